//! Values the three providers share by name.

use crate::open_enum::open_enum;

open_enum! {
    /// An image's width:height ratio, as every provider writes it (`"16:9"`).
    ///
    /// One type for all three providers; each provider (and each runbase model) accepts its own
    /// subset, listed next to its request type and checked by its `validate()`.
    pub enum AspectRatio("aspect ratio") {
        /// `1:1`
        Square = "1:1",
        /// `4:3`
        Landscape4x3 = "4:3",
        /// `3:4`
        Portrait3x4 = "3:4",
        /// `3:2`
        Landscape3x2 = "3:2",
        /// `2:3`
        Portrait2x3 = "2:3",
        /// `16:9`
        Landscape16x9 = "16:9",
        /// `9:16`
        Portrait9x16 = "9:16",
        /// `5:4`
        Landscape5x4 = "5:4",
        /// `4:5`
        Portrait4x5 = "4:5",
        /// `2:1`
        Landscape2x1 = "2:1",
        /// `1:2`
        Portrait1x2 = "1:2",
        /// `21:9`
        Landscape21x9 = "21:9",
        /// `9:21`
        Portrait9x21 = "9:21",
    }
}

impl AspectRatio {
    /// The ratio as `(width, height)` parts, for any value of the form `W:H`, known or not.
    pub fn parts(&self) -> Option<(u32, u32)> {
        let (width, height) = self.as_str().split_once(':')?;
        let width: u32 = width.trim().parse().ok()?;
        let height: u32 = height.trim().parse().ok()?;
        (width > 0 && height > 0).then_some((width, height))
    }

    /// Pixel dimensions with the long side `long_side` pixels, rounded to the nearest pixel.
    pub fn dimensions(&self, long_side: u32) -> Option<(u32, u32)> {
        let (width, height) = self.parts()?;
        let long = u64::from(long_side);
        let scaled = |part: u32, whole: u32| -> u32 {
            let value = (u64::from(part) * long + u64::from(whole) / 2) / u64::from(whole);
            u32::try_from(value.max(1)).unwrap_or(u32::MAX)
        };
        Some(if width >= height {
            (long_side, scaled(height, width))
        } else {
            (scaled(width, height), long_side)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_user_input_is_strict_and_lists_known_values() {
        assert_eq!(
            "16:9".parse::<AspectRatio>(),
            Ok(AspectRatio::Landscape16x9)
        );
        let err = "16x9".parse::<AspectRatio>().unwrap_err();
        assert!(err.to_string().contains("1:1, 4:3, 3:4"), "{err}");
    }

    #[test]
    fn reading_the_wire_is_lenient() {
        let ratio: AspectRatio = serde_json::from_str(r#""7:3""#).unwrap();
        assert_eq!(ratio, AspectRatio::Other("7:3".into()));
        assert_eq!(serde_json::to_string(&ratio).unwrap(), r#""7:3""#);
        assert_eq!(ratio.parts(), Some((7, 3)));
    }

    #[test]
    fn dimensions_keep_the_long_side() {
        assert_eq!(AspectRatio::Landscape16x9.dimensions(256), Some((256, 144)));
        assert_eq!(AspectRatio::Portrait3x4.dimensions(1024), Some((768, 1024)));
        assert_eq!(AspectRatio::Square.dimensions(256), Some((256, 256)));
        assert_eq!(AspectRatio::Other("wide".into()).dimensions(256), None);
    }
}
