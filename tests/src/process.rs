//! Child processes that are killed when the test that started them ends.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process owned by a test; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct ServerProcess {
    /// The running child.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl ServerProcess {
    /// Spawns `command` with stdout/stderr going to `log` (a file path) so a failing test can show it.
    pub fn spawn(name: &str, mut command: Command, log: &std::path::Path) -> std::io::Result<Self> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        Ok(Self {
            child,
            name: name.to_string(),
        })
    }

    /// Waits until `addr` accepts TCP connections, or panics after `timeout` naming the server.
    pub fn wait_for_port(&mut self, addr: SocketAddr, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before listening on {addr}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not listen on {addr} within {timeout:?}", self.name);
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
