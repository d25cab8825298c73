"""Tempo: the band's clock (Ableton Link, MIDI clock) as a wire, and what locks to it."""
