// axis_dwc: AXI-Stream lane-width converter, IN_LANES -> OUT_LANES lanes of BITS bits.
//
// Semantics: the lane sequence is unchanged: lane j of input beat b is element b*IN_LANES + j
// of the stream, lane j of output beat c is element c*OUT_LANES + j (lane 0 in the least
// significant bits). One of IN_LANES, OUT_LANES must divide the other (the stitcher refuses
// other pairs); equal widths pass through.
//   upsize   (OUT = R*IN):  R input beats fill one output beat; one input beat per cycle,
//                           also while the full beat leaves (in_TREADY = !full || out_TREADY).
//   downsize (IN = R*OUT):  one input beat leaves as R output beats; the next input beat is
//                           taken at the edge that sends the last slice.
module axis_dwc #(
  parameter int IN_LANES = 1,
  parameter int OUT_LANES = 1,
  parameter int BITS = 8
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [IN_LANES*BITS-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  output logic [OUT_LANES*BITS-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY
);
  localparam int IW = IN_LANES * BITS;
  localparam int OW = OUT_LANES * BITS;
  if (IN_LANES % OUT_LANES != 0 && OUT_LANES % IN_LANES != 0) begin : g_err_ratio
    $error("axis_dwc: one of IN_LANES, OUT_LANES must divide the other");
  end

  /* verilator lint_off UNUSEDSIGNAL */
  logic unused_pass;
  assign unused_pass = ap_clk && ap_rst_n;
  /* verilator lint_on UNUSEDSIGNAL */
  if (IN_LANES == OUT_LANES) begin : g_pass
    assign out0_V_TDATA = in0_V_TDATA;
    assign out0_V_TVALID = in0_V_TVALID;
    assign in0_V_TREADY = out0_V_TREADY;
  end else if (OUT_LANES > IN_LANES) begin : g_up
    localparam int R = OUT_LANES / IN_LANES;
    localparam int RW = $clog2(R);
    logic [OW-1:0] buffer;
    logic [RW-1:0] cnt;
    logic full, push, pop, last;
    assign in0_V_TREADY = !full || out0_V_TREADY;
    assign out0_V_TVALID = full;
    assign out0_V_TDATA = buffer;
    assign push = in0_V_TVALID && in0_V_TREADY;
    assign pop = full && out0_V_TREADY;
    assign last = cnt == RW'(R - 1);
    always_ff @(posedge ap_clk) begin
      if (push) buffer[cnt*IW +: IW] <= in0_V_TDATA;
    end
    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) begin
        cnt <= '0;
        full <= 1'b0;
      end else begin
        if (push) cnt <= last ? '0 : cnt + 1'b1;
        if (push && last) full <= 1'b1;
        else if (pop) full <= 1'b0;
      end
    end
  end else begin : g_down
    localparam int R = IN_LANES / OUT_LANES;
    localparam int RW = $clog2(R);
    logic [IW-1:0] word;
    logic [RW-1:0] cnt;
    logic full, push, pop, last;
    assign last = cnt == RW'(R - 1);
    assign out0_V_TVALID = full;
    assign out0_V_TDATA = word[cnt*OW +: OW];
    assign pop = full && out0_V_TREADY;
    assign in0_V_TREADY = !full || (out0_V_TREADY && last);
    assign push = in0_V_TVALID && in0_V_TREADY;
    always_ff @(posedge ap_clk) begin
      if (push) word <= in0_V_TDATA;
    end
    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) begin
        cnt <= '0;
        full <= 1'b0;
      end else begin
        if (pop) cnt <= last ? '0 : cnt + 1'b1;
        if (push) full <= 1'b1;
        else if (pop && last) full <= 1'b0;
      end
    end
  end
endmodule
