//! The control plane: Segment's Public API over HTTP.
