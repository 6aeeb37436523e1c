//! Order controller benchmark (being written).
fn main() {}
