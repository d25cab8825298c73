"""The audio layer: decoding files, the audio wire, and block analysis (levels, bands, onsets, tempo)."""
