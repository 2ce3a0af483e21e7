// axis_fifo: a first-word-fall-through AXI-Stream FIFO of DEPTH beats of WIDTH bits.
//
// Semantics: beats leave in the order they entered; none is lost or duplicated.
//   in_TREADY  = count < DEPTH            (a register compare: no path from out_TREADY)
//   out_TVALID = count != 0               (a register compare: no path from in_TVALID)
// so a FIFO between two layers cuts every combinational valid/ready path between them.
// ``occupancy`` is the current count (the stitcher's FIFO sizing records its peak).
// Storage: DEPTH entries, asynchronous read (distributed RAM or flip-flops after Yosys).
// Throughput: one beat in and one beat out per cycle, also when full (a read frees the slot
// at the same edge only from the next cycle on: a full FIFO of depth 1 halves the rate, so
// the stitcher uses DEPTH >= 2).
module axis_fifo #(
  parameter int WIDTH = 8,
  parameter int DEPTH = 2
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [WIDTH-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  output logic [WIDTH-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY,
  output logic [15:0] occupancy
);
  localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam int CW = $clog2(DEPTH + 1);
  if (DEPTH < 1 || DEPTH > 65535) begin : g_err_depth
    $error("axis_fifo: DEPTH must be in 1..65535");
  end

  logic [WIDTH-1:0] mem [DEPTH];
  logic [AW-1:0] wr, rd;
  logic [CW-1:0] count;
  logic push, pop;

  assign in0_V_TREADY = count < CW'(DEPTH);
  assign out0_V_TVALID = count != '0;
  assign out0_V_TDATA = mem[rd];
  assign push = in0_V_TVALID && in0_V_TREADY;
  assign pop = out0_V_TVALID && out0_V_TREADY;
  assign occupancy = 16'(count);

  function automatic logic [AW-1:0] next(input logic [AW-1:0] a);
    next = (a == AW'(DEPTH - 1)) ? '0 : a + 1'b1;
  endfunction

  always_ff @(posedge ap_clk) begin
    if (push) mem[wr] <= in0_V_TDATA;
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      wr <= '0;
      rd <= '0;
      count <= '0;
    end else begin
      if (push) wr <= next(wr);
      if (pop) rd <= next(rd);
      case ({push, pop})
        2'b10: count <= count + 1'b1;
        2'b01: count <= count - 1'b1;
        default: ;
      endcase
    end
  end
endmodule
