"""Per-call processing: ordering, recording, segmentation, loudness, the CallSession."""
