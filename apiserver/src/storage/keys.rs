//! Key ranges shared by the backends: the byte range a key prefix covers and where a paginated
//! read resumes.

/// The first key after every key that starts with `prefix` (the exclusive end of the prefix's
/// range), or `None` when no such key exists (an empty prefix, or one made only of `0xff` bytes):
/// then the range is unbounded above.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The key range a list or watch covers: keys under a prefix, optionally only those after a
/// continue position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    /// The lowest key in the range.
    pub start: Vec<u8>,
    /// Whether `start` itself belongs to the range (`false` for a continue position).
    pub start_inclusive: bool,
    /// The exclusive end, or `None` for unbounded.
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Keys starting with `prefix` and, if given, strictly greater than `start_after`.
    pub fn new(prefix: &str, start_after: Option<&str>) -> Self {
        let end = prefix_end(prefix.as_bytes());
        match start_after {
            Some(after) if after.as_bytes() >= prefix.as_bytes() => Self {
                start: after.as_bytes().to_vec(),
                start_inclusive: false,
                end,
            },
            _ => Self {
                start: prefix.as_bytes().to_vec(),
                start_inclusive: true,
                end,
            },
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above_start = if self.start_inclusive {
            key >= self.start.as_slice()
        } else {
            key > self.start.as_slice()
        };
        above_start && self.end.as_deref().is_none_or(|end| key < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_end(b"/a/"), Some(b"/a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn range_respects_prefix_and_continue_position() {
        let all = KeyRange::new("/r/", None);
        assert!(all.contains(b"/r/"));
        assert!(all.contains(b"/r/x"));
        assert!(!all.contains(b"/r0"));
        assert!(!all.contains(b"/q/z"));

        let rest = KeyRange::new("/r/", Some("/r/b"));
        assert!(!rest.contains(b"/r/a"));
        assert!(!rest.contains(b"/r/b"));
        assert!(rest.contains(b"/r/b\0"));
        assert!(rest.contains(b"/r/c"));

        // A continue position before the prefix does not widen the range.
        let before = KeyRange::new("/r/", Some("/a"));
        assert!(!before.contains(b"/b"));
        assert!(before.contains(b"/r/a"));

        let everything = KeyRange::new("", None);
        assert!(everything.contains(b"\xff\xff"));
    }
}
