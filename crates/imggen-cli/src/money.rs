//! Money on the command line: the spending cap of `--max-cost`, and the line of what a paid
//! command cost.

use std::time::Duration;

use imggen_core::{Cost, Imggen, Spending};

use crate::args::RequestSettings;
use crate::output::CostOutput;

/// The ledger `--max-cost` (with `--allow-unpriced`) asks for, starting from `spent`.
pub(crate) fn spending(
    settings: &RequestSettings,
    imggen: &Imggen,
    spent: Cost,
) -> Option<Spending> {
    let cap = settings.max_cost?.allow_unpriced(settings.allow_unpriced);
    Some(Spending::new(cap, imggen.credit_price(), spent))
}

/// What a paid command ends with: `2 images · $0.14 · 47 s`.
pub(crate) fn paid_line(images_saved: u64, cost: Cost, took: Duration) -> String {
    format!("{} · {} · {}", images(images_saved), cost, seconds(took))
}

/// `47 s`, `1.2 s`.
fn seconds(took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else {
        format!("{secs:.0} s")
    }
}

/// The exact cost a [`CostOutput`] holds (it was made from one).
pub(crate) fn cost_of(output: &CostOutput) -> Cost {
    let usd = output.usd.parse().unwrap_or_default();
    Cost::usd(usd) + Cost::credits(imggen_types::Credits(output.credits))
}

pub(crate) fn images(count: u64) -> String {
    plural(count, "image")
}

pub(crate) fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paid_command_says_what_it_made_cost_and_took() {
        let cost = Cost::usd("0.14".parse().unwrap());
        assert_eq!(
            paid_line(2, cost, Duration::from_secs(47)),
            "2 images · $0.14 · 47 s"
        );
        assert_eq!(
            paid_line(
                1,
                Cost::credits(imggen_types::Credits(2)),
                Duration::from_millis(6_900)
            ),
            "1 image · 2 credits · 6.9 s"
        );
    }

    #[test]
    fn a_cost_output_reads_back_exactly() {
        let cost = Cost::usd("0.0123".parse().unwrap()) + Cost::credits(imggen_types::Credits(4));
        assert_eq!(cost_of(&CostOutput::from(cost)), cost);
    }
}
