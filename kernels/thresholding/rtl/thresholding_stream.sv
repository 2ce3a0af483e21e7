// thresholding_stream: multi-threshold activation (FINN's MultiThreshold / Thresholding layer).
//
// Integer semantics: kernels/thresholding/golden.py (the specification, bit exact).
//   y[c] = BIAS + #{s in [0, N_STEPS) : x[c] >= T[r(c), s]},   r(c) = SHARED ? 0 : c
//   x: IN_BITS bits, signed (two's complement) if IN_SIGNED else unsigned; T: T_BITS bits
//   signed; the compare is exact in a signed width holding both (a threshold outside the input
//   range is simply always / never reached); a tie x == T counts. y is OUT_BITS bits (signed if
//   OUT_SIGNED); BIAS .. BIAS + N_STEPS must fit (checked here and in golden.py). The count is a
//   plain count of true compares: the RTL does not need the thresholds sorted (FINN's are
//   sorted ascending per channel; the result is the same either way).
//   THRESHOLDS: packed constant, row r step s at bits [(r*N_STEPS + s)*T_BITS +: T_BITS],
//   ROWS = SHARED ? 1 : C rows (golden.hdl_params formats it as a sized hex literal).
//
// Streams (AXI-Stream, lane 0 in the least significant bits):
//   in0:  per vector C/PE beats, beat f lane j = channel f*PE + j at [j*IN_BITS +: IN_BITS]
//   out0: per vector C/PE beats, beat f lane j = channel f*PE + j at [j*OUT_BITS +: OUT_BITS]
//
// Micro-architecture (one beat per cycle, 3 register stages, global pipeline enable
// en = !out0_TVALID || out0_TREADY):
//   - stage 1: input register x1 and the fold index f1 (which rows the lanes use; a counter
//     over the C/PE beats of a vector, only when the thresholds are per channel and PE < C).
//   - stage 2: per lane the N_STEPS compares against constants (selected by f1), registered
//     as N_STEPS bits (the compares and the count in one stage were 17 LUT levels + 4 carry
//     cells for the demo's per-channel INT10 layer in Yosys' xc7 mapping).
//   - stage 3: their count + BIAS into the output register.
//   in0_V_TREADY = en: it depends on out0_V_TREADY (one LUT), never on in0_V_TVALID.
module thresholding_stream #(
  parameter int C = 64, PE = 64, N_STEPS = 15,
  parameter int IN_BITS = 8, IN_SIGNED = 1, T_BITS = 8,
  parameter int SHARED = 1,        // 1: one threshold row for all channels
  parameter int BIAS = 0,          // FINN's ActVal (signed)
  parameter int OUT_BITS = 4, OUT_SIGNED = 0,
  parameter logic [((SHARED != 0) ? 1 : C)*N_STEPS*T_BITS-1:0] THRESHOLDS = '0
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [PE*IN_BITS-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  output logic [PE*OUT_BITS-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY
);
  // ---------------------------------------------------------------- derived sizes
  localparam int NFOLD = C / PE;                          // beats per vector
  localparam int NSEL = (SHARED != 0) ? 1 : NFOLD;        // threshold rows per lane
  localparam int FW = (NSEL > 1) ? $clog2(NSEL) : 1;      // fold counter
  localparam int XB = IN_BITS + ((IN_SIGNED != 0) ? 0 : 1);   // signed width of an input
  localparam int CW = (XB > T_BITS) ? XB : T_BITS;        // compare width (holds x and T)
  localparam int NW = $clog2(N_STEPS + 1);                // count width
  localparam int RW = N_STEPS * T_BITS;                   // one row
  localparam int OUT_LO = (OUT_SIGNED != 0) ? -(1 << (OUT_BITS - 1)) : 0;
  localparam int OUT_HI = (OUT_SIGNED != 0) ? (1 << (OUT_BITS - 1)) - 1 : (1 << OUT_BITS) - 1;

  // ---------------------------------------------------------------- parameter checks
  if (C % PE != 0) begin : g_err_fold
    $error("thresholding_stream: PE must divide C");
  end
  if (BIAS < OUT_LO || BIAS + N_STEPS > OUT_HI) begin : g_err_out
    $error("thresholding_stream: BIAS .. BIAS + N_STEPS does not fit OUT_BITS / OUT_SIGNED");
  end
  if (N_STEPS < 1 || OUT_BITS > 30) begin : g_err_steps
    $error("thresholding_stream: N_STEPS >= 1 and OUT_BITS <= 30 required");
  end

  // ---------------------------------------------------------------- control
  logic en, v1, v2;
  logic [FW-1:0] f;
  /* verilator lint_off UNUSEDSIGNAL */
  logic [FW-1:0] f1;               // unused when every lane has one row (shared, or PE = C)
  /* verilator lint_on UNUSEDSIGNAL */
  assign en = !out0_V_TVALID || out0_V_TREADY;
  assign in0_V_TREADY = en;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      f <= '0;
      v1 <= 1'b0;
      v2 <= 1'b0;
      out0_V_TVALID <= 1'b0;
    end else if (en) begin
      if (in0_V_TVALID && NSEL > 1) f <= (f == FW'(NSEL - 1)) ? '0 : f + 1'b1;
      v1 <= in0_V_TVALID;
      v2 <= v1;
      out0_V_TVALID <= v2;
    end
  end

  // ---------------------------------------------------------------- datapath
  logic [PE*IN_BITS-1:0] x1;
  always_ff @(posedge ap_clk) begin
    if (en) begin
      x1 <= in0_V_TDATA;
      f1 <= f;
    end
  end

  for (genvar j = 0; j < PE; j++) begin : g_lane
    // the rows lane j uses: fold k -> row (SHARED ? 0 : k*PE + j)
    logic [NSEL*RW-1:0] rows;
    for (genvar k = 0; k < NSEL; k++) begin : g_row
      localparam int R = (SHARED != 0) ? 0 : k * PE + j;
      assign rows[k*RW +: RW] = THRESHOLDS[R*RW +: RW];
    end
    logic [RW-1:0] t;
    logic signed [CW-1:0] xs;
    logic [NW-1:0] cnt;
    if (NSEL > 1) begin : g_sel
      assign t = rows[f1*RW +: RW];
    end else begin : g_one
      assign t = rows;
    end
    if (IN_SIGNED != 0) begin : g_s
      assign xs = CW'($signed(x1[j*IN_BITS +: IN_BITS]));
    end else begin : g_u
      assign xs = CW'(x1[j*IN_BITS +: IN_BITS]);
    end
    logic [N_STEPS-1:0] ge, ge2;
    always_comb begin
      for (int s = 0; s < N_STEPS; s++) ge[s] = xs >= CW'($signed(t[s*T_BITS +: T_BITS]));
    end
    always_ff @(posedge ap_clk) begin
      if (en) ge2 <= ge;
    end
    always_comb begin
      cnt = '0;
      for (int s = 0; s < N_STEPS; s++) cnt = cnt + NW'(ge2[s]);
    end
    always_ff @(posedge ap_clk) begin
      if (en) out0_V_TDATA[j*OUT_BITS +: OUT_BITS] <= OUT_BITS'(BIAS + int'(cnt));
    end
  end
endmodule
