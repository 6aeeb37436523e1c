//! The one owner of process signals. `SIGTERM` and `SIGINT` ask for a graceful stop, `SIGHUP`
//! for a configuration reload; the daemon's main loop receives them as [`Signal`]s and cancels the
//! [`tokio_util::sync::CancellationToken`] every task holds.

use tokio::signal::unix::{SignalKind, signal};

/// A request from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `SIGTERM` or `SIGINT`: stop gracefully.
    Terminate,
    /// `SIGHUP`: reload the configuration and resync the files.
    Reload,
}

/// The process's signal handlers, installed once.
#[derive(Debug)]
pub struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (from here on the signals no longer kill the process).
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.terminate.recv() => Signal::Terminate,
            _ = self.interrupt.recv() => Signal::Terminate,
            _ = self.hangup.recv() => Signal::Reload,
        }
    }
}

/// Installs the handlers and waits for SIGTERM or SIGINT, for commands without a reload
/// (`arcd apiserver`, `arcd controllers`); SIGHUP is ignored there.
pub async fn terminated() -> std::io::Result<()> {
    let mut signals = Signals::install()?;
    while signals.next().await != Signal::Terminate {}
    Ok(())
}
