//! Plain HTTP(S) file sources: streaming GET with retries and a custom CA.
