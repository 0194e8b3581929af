//! How much room the read half asks for per read ([`ReadSize`]).

/// Reads shorter than this left in the buffer trigger a fresh reservation.
pub(crate) const MIN_READ_ROOM: usize = 256;

/// How much room to ask for per read: starts at the configured size,
/// doubles while reads fill the room (up to [`ReadSize::MAX`]) and halves
/// again when they come back mostly empty, so that a connection receiving
/// large messages reads each in one call while a quiet one asks for little.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadSize {
    current: usize,
    min: usize,
}

impl ReadSize {
    pub(crate) const MAX: usize = 64 * 1024;

    pub(crate) fn new(min: usize) -> Self {
        ReadSize { current: min, min }
    }

    pub(crate) fn get(&self) -> usize {
        self.current
    }

    pub(crate) fn record(&mut self, read: usize, room: usize) {
        if read >= room {
            self.current = (self.current * 2).min(Self::MAX.max(self.min));
        } else if read < self.current / 8 {
            self.current = (self.current / 2).max(self.min);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReadSize;

    #[test]
    fn read_size_grows_while_reads_fill_and_shrinks_when_quiet() {
        let mut size = ReadSize::new(4096);
        size.record(4096, 4096);
        assert_eq!(size.get(), 8192);
        for _ in 0..10 {
            size.record(size.get(), size.get());
        }
        assert_eq!(size.get(), ReadSize::MAX);
        size.record(20_000, 65_536);
        assert_eq!(size.get(), ReadSize::MAX, "a read that is a fair share keeps the size");
        for _ in 0..10 {
            size.record(26, size.get());
        }
        assert_eq!(size.get(), 4096, "never below the configured size");
    }
}
