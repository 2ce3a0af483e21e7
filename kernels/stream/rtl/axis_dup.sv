// axis_dup: FINN's DuplicateStreams in RTL: every input beat is sent on each of M outputs.
//
// Semantics: output m carries exactly the input beat sequence. Output m's TVALID is the input's
// TVALID while beat b has not yet been taken on m (``sent[m]`` records outputs that took it);
// the input beat is consumed in the cycle in which every output has taken it, so outputs may
// accept at different cycles (each with its own back-pressure). No storage beyond M bits;
// a FIFO on each output (the stitcher's) decouples the consumers.
module axis_dup #(
  parameter int WIDTH = 8,
  parameter int M = 2
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [WIDTH-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  output logic [M*WIDTH-1:0] out_TDATA, output logic [M-1:0] out_TVALID, input logic [M-1:0] out_TREADY
);
  logic [M-1:0] sent, take;
  assign take = out_TVALID & out_TREADY;
  assign out_TVALID = {M{in0_V_TVALID}} & ~sent;
  assign out_TDATA = {M{in0_V_TDATA}};
  assign in0_V_TREADY = &(sent | take);
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) sent <= '0;
    else if (in0_V_TVALID && in0_V_TREADY) sent <= '0;
    else sent <= sent | take;
  end
endmodule
