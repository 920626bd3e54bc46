//! Tasks and their lifecycles: a task's status is a pure function of the clock.

use std::time::{Duration, Instant};

use imggen_types::AspectRatio;

use crate::config::{ImageSize, Profile};
use crate::keys::ApiKey;
use crate::ledger::Amount;
use crate::provider::Provider;

/// Where a task is, in words every provider maps to its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// runblob and runbase `pending`.
    Pending,
    /// `processing`.
    Processing,
    /// runblob and gptimg `completed`, runbase `succeeded`.
    Completed,
    /// `failed`.
    Failed,
}

impl Phase {
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Phase::Completed | Phase::Failed)
    }
}

/// What only one provider's tasks carry.
#[derive(Clone, Debug)]
pub(crate) enum Detail {
    Runblob,
    Gptimg {
        row_id: String,
        image_to_image: bool,
    },
    Runbase {
        model: imggen_types::runbase::Model,
    },
}

/// One task, as the mock keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub provider: Provider,
    pub id: String,
    pub key: ApiKey,
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub images: u32,
    pub created: Instant,
    /// The first part of `duration` spent `pending` (zero for gptimg, which has no such state).
    pub queued: Duration,
    pub duration: Duration,
    /// The code the task fails with, when a fault chose failure.
    pub failure: Option<String>,
    pub price: Amount,
    pub detail: Detail,
}

impl Task {
    pub(crate) fn phase(&self, now: Instant) -> Phase {
        let elapsed = now.saturating_duration_since(self.created);
        if elapsed >= self.duration {
            if self.failure.is_some() {
                Phase::Failed
            } else {
                Phase::Completed
            }
        } else if elapsed < self.queued {
            Phase::Pending
        } else {
            Phase::Processing
        }
    }

    pub(crate) fn finished_at(&self) -> Instant {
        self.created + self.duration
    }

    /// `<base>/files/<provider>/<id>/<index>.png` for every image.
    pub(crate) fn file_urls(&self, base_url: &str) -> Vec<String> {
        (0..self.images)
            .map(|index| format!("{base_url}/files/{}/{}/{index}.png", self.provider, self.id))
            .collect()
    }
}

/// Draws how long a task takes, and how much of that it is `pending`.
pub(crate) fn draw_duration(
    rng: &mut fastrand::Rng,
    profile: Profile,
    provider: Provider,
) -> (Duration, Duration) {
    let (low, high) = profile.duration_range(provider);
    let low_ms = u64::try_from(low.as_millis()).unwrap_or(u64::MAX);
    let high_ms = u64::try_from(high.as_millis())
        .unwrap_or(u64::MAX)
        .max(low_ms);
    // A year at most: longer would only risk overflowing the clock's arithmetic.
    let cap = 365 * 24 * 3600 * 1000;
    let duration = Duration::from_millis(rng.u64(low_ms.min(cap)..=high_ms.min(cap)));
    let queued = match provider {
        Provider::Gptimg => Duration::ZERO,
        Provider::Runblob | Provider::Runbase => duration / 4,
    };
    (duration, queued)
}

/// The pixel size of a result: the ratio's shape at the configured long side.
pub(crate) fn dimensions(ratio: &AspectRatio, size: ImageSize, full_long_side: u32) -> (u32, u32) {
    let long_side = match size {
        ImageSize::Small => 256,
        ImageSize::Full => full_long_side,
        ImageSize::LongSide(pixels) => pixels.clamp(1, 8192),
    };
    ratio
        .dimensions(long_side)
        .unwrap_or((long_side, long_side))
}

/// The documented output size of the OpenAI image models: 1024 × 1024 square, 1536 on the
/// long side otherwise.
pub(crate) fn openai_long_side(ratio: &AspectRatio) -> u32 {
    match ratio.parts() {
        Some((width, height)) if width == height => 1024,
        _ => 1536,
    }
}

const NANOID_ALPHABET: &[u8] = b"useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";
const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A runblob `task_uuid`: a UUID v4.
pub(crate) fn runblob_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A gptimg row id: 21 characters of the nanoid alphabet.
pub(crate) fn gptimg_row_id() -> String {
    (0..21)
        .map(|_| char::from(NANOID_ALPHABET[fastrand::usize(..NANOID_ALPHABET.len())]))
        .collect()
}

/// A runbase run id: `run_` and a ULID (48-bit millisecond time, 80 random bits, Crockford
/// base32), so ids sort by creation time as ULIDs do.
pub(crate) fn runbase_id(wall: std::time::SystemTime) -> String {
    let millis = wall
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let mut value: u128 = ((millis & 0xffff_ffff_ffff) << 80)
        | u128::from(fastrand::u64(..)) << 16
        | u128::from(fastrand::u16(..));
    let mut chars = [0u8; 26];
    for slot in chars.iter_mut().rev() {
        *slot = CROCKFORD[(value & 0x1f) as usize];
        value >>= 5;
    }
    format!("run_{}", String::from_utf8_lossy(&chars))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(duration: Duration, queued: Duration, failure: Option<&str>) -> Task {
        Task {
            provider: Provider::Runblob,
            id: "t".into(),
            key: ApiKey::new("k"),
            prompt: "p".into(),
            width: 1,
            height: 1,
            images: 1,
            created: Instant::now(),
            queued,
            duration,
            failure: failure.map(str::to_owned),
            price: Amount::Credits(imggen_types::Credits(2)),
            detail: Detail::Runblob,
        }
    }

    #[test]
    fn status_follows_the_clock() {
        let task = task(Duration::from_secs(4), Duration::from_secs(1), None);
        let at = |ms| task.created + Duration::from_millis(ms);
        assert_eq!(task.phase(at(0)), Phase::Pending);
        assert_eq!(task.phase(at(999)), Phase::Pending);
        assert_eq!(task.phase(at(1000)), Phase::Processing);
        assert_eq!(task.phase(at(3999)), Phase::Processing);
        assert_eq!(task.phase(at(4000)), Phase::Completed);
    }

    #[test]
    fn a_doomed_task_fails_when_it_would_have_finished() {
        let task = task(
            Duration::from_secs(2),
            Duration::ZERO,
            Some("OPENAI_DECLINED"),
        );
        assert_eq!(task.phase(task.created), Phase::Processing);
        assert_eq!(task.phase(task.finished_at()), Phase::Failed);
    }

    #[test]
    fn an_instant_task_is_done_at_once() {
        let task = task(Duration::ZERO, Duration::ZERO, None);
        assert_eq!(task.phase(task.created), Phase::Completed);
    }

    #[test]
    fn durations_are_reproducible_from_the_seed() {
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..5)
                .map(|_| draw_duration(&mut rng, Profile::Fast, Provider::Runblob).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        for duration in draw(7) {
            assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&duration));
        }
        let mut rng = fastrand::Rng::with_seed(1);
        let (duration, queued) = draw_duration(&mut rng, Profile::Realistic, Provider::Runblob);
        assert!(duration >= Duration::from_secs(60) && duration <= Duration::from_secs(180));
        assert_eq!(queued, duration / 4);
    }

    #[test]
    fn ids_have_each_providers_form() {
        let row = gptimg_row_id();
        assert_eq!(row.len(), 21);
        assert!(
            row.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
        let run = runbase_id(std::time::SystemTime::now());
        assert_eq!(run.len(), 4 + 26);
        assert!(run.starts_with("run_"));
        assert_eq!(
            uuid::Uuid::parse_str(&runblob_id())
                .unwrap()
                .get_version_num(),
            4
        );
    }

    #[test]
    fn full_size_follows_the_documented_sizes() {
        assert_eq!(
            dimensions(
                &AspectRatio::Square,
                ImageSize::Full,
                openai_long_side(&AspectRatio::Square)
            ),
            (1024, 1024)
        );
        let ratio = AspectRatio::Landscape3x2;
        assert_eq!(
            dimensions(&ratio, ImageSize::Full, openai_long_side(&ratio)),
            (1536, 1024)
        );
        assert_eq!(dimensions(&ratio, ImageSize::Small, 1536), (256, 171));
    }
}
