//! [`Limits`]: what a peer may make the decoder buffer.

/// Security limits on what a peer may make us buffer.
///
/// Both limits are checked against the length a frame *announces*, before its
/// payload is buffered, so a peer cannot make us allocate past them.
///
/// ```
/// use silverback::Limits;
///
/// let limits = Limits::default().max_message_size(1 << 20).max_frame_size(1 << 20);
/// assert_eq!(limits.get_max_message_size(), 1 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    max_frame_size: usize,
    max_message_size: usize,
}

impl Limits {
    /// Default for [`Limits::max_frame_size`]: 16 MiB.
    pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;
    /// Default for [`Limits::max_message_size`]: 64 MiB.
    pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

    /// No limits at all. A peer can then make the connection buffer as much
    /// memory as it likes: use only with trusted peers.
    #[must_use]
    pub const fn unlimited() -> Self {
        Limits { max_frame_size: usize::MAX, max_message_size: usize::MAX }
    }

    /// The largest payload a single received frame may announce. Bounds the
    /// memory one frame can make us reserve. Exceeding it closes with 1009.
    #[must_use]
    pub const fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The largest received message, summed over its fragments. Bounds the
    /// memory one message can make us buffer. Exceeding it closes with 1009.
    #[must_use]
    pub const fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The configured frame limit.
    #[must_use]
    pub const fn get_max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// The configured message limit.
    #[must_use]
    pub const fn get_max_message_size(&self) -> usize {
        self.max_message_size
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame_size: Self::DEFAULT_MAX_FRAME_SIZE, max_message_size: Self::DEFAULT_MAX_MESSAGE_SIZE }
    }
}
