//! imggen-core's behaviour: against a fake provider on injected time (every rule about money
//! and time), and end to end against imggen-mock.

mod batch;
mod fake;
mod jobs;
mod mock;
mod wire;
