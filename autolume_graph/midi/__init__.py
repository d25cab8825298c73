"""MIDI in: ports opened through python-rtmidi, messages as wires (MIDIIn), parameter bindings with learn
(MIDIControl), and MIDI clock as a tempo source (MIDIClock)."""
