//! imggen-core's behaviour: against a fake provider on injected time (every rule about money
//! and time), and end to end against imggen-mock.

mod batch;
mod convert;
mod fake;
mod fourth;
mod jobs;
mod mock;
mod naming;
mod postgres;
mod spend;
mod watch;
mod wire;

use imggen_core::ProviderId;

// The built-in providers the tests drive (a fourth, defined in the test, is in `fourth.rs`).
const GPTIMG: ProviderId = imggen_gptimg::provider::ID;
const RUNBLOB: ProviderId = imggen_runblob::provider::ID;
const RUNBASE: ProviderId = imggen_runbase::provider::ID;
