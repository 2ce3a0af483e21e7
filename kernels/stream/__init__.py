"""Stream plumbing for the stitched design: FIFO, lane-width converter, stream duplicator
(FINN's DuplicateStreams) in SystemVerilog."""
