//! What an uploaded object is, from its bytes: its type is sniffed (never the client's word), an
//! image's dimensions are read from its header before a pixel is decoded (a decompression bomb is
//! refused there), and a small preview is made. CPU work on at most `max_upload_bytes`: callers
//! run it on a blocking thread, never in an actor's handler.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::ports::UploadFacts;

/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 64;
/// Bytes the decoder may allocate for one image, whatever its header says.
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;

/// Why an object is not what it was declared to be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum InspectError {
    /// Its bytes are of another type than declared (what they look like, if known).
    #[error("the file is not {declared}{}", .found.as_ref().map(|f| format!(" but {f}")).unwrap_or_default())]
    Mismatch {
        /// The declared type.
        declared: String,
        /// The sniffed type.
        found: Option<String>,
    },
    /// An image with more pixels than allowed (its width and height).
    #[error("the image is {0}x{1} pixels, more than allowed")]
    TooManyPixels(u32, u32),
    /// An image that does not decode.
    #[error("the image does not decode: {0}")]
    Undecodable(String),
}

/// Checks `bytes` (the whole object, or at least its first bytes for a type that is not an
/// image) against the `declared` content type; for an image, also its size in pixels (at most
/// `max_pixels`), and makes its thumbnail. `size` is the object's size in bytes.
pub fn inspect(
    bytes: &[u8],
    size: u64,
    declared: &str,
    max_pixels: u64,
) -> Result<UploadFacts, InspectError> {
    let mismatch = |found: Option<&str>| InspectError::Mismatch {
        declared: declared.to_owned(),
        found: found.map(str::to_owned),
    };
    let sniffed = infer::get(bytes).map(|t| t.mime_type());
    if declared == "text/plain" {
        // Text has no signature: it is text when it is UTF-8 (a cut-off last character allowed)
        // without NUL bytes, and no binary format's signature matches it.
        let text = match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        if sniffed.is_some() || !text || bytes.contains(&0) {
            return Err(mismatch(sniffed));
        }
    } else if sniffed != Some(declared) {
        return Err(mismatch(sniffed));
    }
    let mut facts = UploadFacts {
        size,
        content_type: declared.to_owned(),
        dimensions: None,
        thumbnail: None,
    };
    if let Some(format) = ImageFormat::from_mime_type(declared) {
        let (width, height, thumbnail) = picture(bytes, format, max_pixels)?;
        facts.dimensions = Some((width, height));
        facts.thumbnail = Some(thumbnail);
    }
    Ok(facts)
}

/// An image's width, height and JPEG thumbnail, its size checked before decoding.
fn picture(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
) -> Result<(u32, u32, Vec<u8>), InspectError> {
    let undecodable = |e: image::ImageError| InspectError::Undecodable(e.to_string());
    let reader = || {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = Limits::default();
        limits.max_alloc = Some(MAX_DECODE_ALLOC);
        reader.limits(limits);
        reader
    };
    let (width, height) = reader().into_dimensions().map_err(undecodable)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(InspectError::TooManyPixels(width, height));
    }
    let image = reader().decode().map_err(undecodable)?;
    let preview = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
        .encode_image(&preview)
        .map_err(undecodable)?;
    Ok((width, height, jpeg))
}

#[cfg(test)]
mod tests {
    use image::{ImageEncoder, RgbImage};

    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(
                image.as_raw(),
                width,
                height,
                image::ExtendedColorType::Rgb8,
            )
            .expect("png");
        out
    }

    /// `png` with its header claiming `width` x `height` (a decompression bomb's shape).
    fn claims(mut png: Vec<u8>, width: u32, height: u32) -> Vec<u8> {
        // IHDR: length (4) + type (4) at 8, width at 16, height at 20, CRC over 12..29 at 29.
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    #[test]
    fn an_image_gets_its_dimensions_and_a_small_jpeg_preview() {
        let bytes = png(300, 120);
        let facts = inspect(&bytes, bytes.len() as u64, "image/png", 1_000_000).expect("a png");
        assert_eq!(facts.dimensions, Some((300, 120)));
        assert_eq!(facts.size, bytes.len() as u64);
        let thumb = facts.thumbnail.expect("a thumbnail");
        assert_eq!(&thumb[..3], &[0xff, 0xd8, 0xff], "a JPEG");
        let preview = image::load_from_memory(&thumb).expect("decodes");
        assert_eq!(
            (preview.width(), preview.height()),
            (64, 26),
            "the aspect kept"
        );
    }

    #[test]
    fn content_that_is_not_its_declared_type_is_refused() {
        let bytes = png(4, 4);
        assert_eq!(
            inspect(&bytes, 1, "image/jpeg", 1_000_000),
            Err(InspectError::Mismatch {
                declared: "image/jpeg".into(),
                found: Some("image/png".into()),
            })
        );
        let html = b"<html><script>alert(1)</script></html>";
        assert!(matches!(
            inspect(html, 1, "image/png", 1_000_000),
            Err(InspectError::Mismatch { .. })
        ));
        assert!(inspect(b"hello\n", 6, "text/plain", 0).is_ok());
        assert!(inspect("caf\u{e9}".as_bytes(), 5, "text/plain", 0).is_ok());
        assert!(
            inspect(&bytes, 1, "text/plain", 0).is_err(),
            "a png is not text"
        );
        assert!(inspect(b"a\0b", 3, "text/plain", 0).is_err());
        assert!(inspect(b"%PDF-1.7\n", 9, "application/pdf", 0).is_ok());
    }

    #[test]
    fn an_image_bomb_is_refused_from_its_header() {
        let bomb = claims(png(1, 1), 100_000, 100_000);
        assert_eq!(
            inspect(&bomb, bomb.len() as u64, "image/png", 40_000_000),
            Err(InspectError::TooManyPixels(100_000, 100_000))
        );
        // Within the limit but lying about its data: refused, not panicked.
        let liar = claims(png(1, 1), 1000, 1000);
        assert!(matches!(
            inspect(&liar, liar.len() as u64, "image/png", 40_000_000),
            Err(InspectError::Undecodable(_))
        ));
    }
}
