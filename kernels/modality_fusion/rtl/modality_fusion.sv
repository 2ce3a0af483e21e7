// modality_fusion: y = clip((sum_m W_m * x_m + 2^(F-1)) >>> F) over M joined input streams.
//
// Integer semantics: kernels/modality_fusion/golden.py (the specification, bit exact).
//   in (M streams): per item D/PE beats each; modality m, lane j at
//                   in_TDATA[(m*PE+j)*IN_BITS +: IN_BITS], valid/ready per modality
//   out0:           per item D/PE beats, lane j at bits [j*OUT_BITS +: OUT_BITS]
//   W_m = WEIGHTS[m*W_BITS +: W_BITS] (signed constants); F = FRAC_BITS; rounding half up
//   (arithmetic shift), saturation to the OUT_BITS/OUT_SIGNED range.
//
// Micro-architecture (one beat per cycle in steady state):
//   - one input register per modality; in_TREADY[m] = !full[m] || take, where
//     take = all registers full && the pipeline advances: TREADY never depends on another
//     input's TVALID (only on registers and on out0_TREADY through the pipeline enable).
//   - stage 1: the M*PE products W_m * x_{m,j} (constant weights; Yosys maps them to DSP48E1
//     unless a weight is 0 or a power of two); stage 2: sum, +2^(F-1), >>> F, saturation into
//     the output register. Global pipeline enable = !out0_TVALID || out0_TREADY.
module modality_fusion #(
  parameter int M = 2, D = 64, PE = 8, IN_BITS = 8, IN_SIGNED = 1,
  parameter int W_BITS = 8, FRAC_BITS = 0, OUT_BITS = 8, OUT_SIGNED = 1,
  parameter logic [M*W_BITS-1:0] WEIGHTS = '0   // W_m at bits [m*W_BITS +: W_BITS], signed
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [M*PE*IN_BITS-1:0] in_TDATA,
  input  logic [M-1:0] in_TVALID, output logic [M-1:0] in_TREADY,
  output logic [PE*OUT_BITS-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY
);
  localparam int XB = IN_BITS + ((IN_SIGNED != 0) ? 0 : 1);   // signed width of an input
  localparam int PB = XB + W_BITS;                             // signed width of a product
  localparam int AB = PB + $clog2(M) + 1;                      // golden acc_bits
  localparam int SW = (AB > FRAC_BITS + 2) ? AB : FRAC_BITS + 2;      // sum + rounding width
  localparam int CW = (SW > OUT_BITS + 1) ? SW : OUT_BITS + 1;        // saturation width

  function automatic logic [CW-1:0] out_bound(input logic hi);
    logic [CW:0] one;
    one = (CW + 1)'(1);
    if (OUT_SIGNED != 0) out_bound = hi ? CW'((one << (OUT_BITS - 1)) - 1'b1)
                                        : CW'(-(one << (OUT_BITS - 1)));
    else out_bound = hi ? CW'((one << OUT_BITS) - 1'b1) : '0;
  endfunction
  localparam logic signed [CW-1:0] OMAX = out_bound(1'b1);
  localparam logic signed [CW-1:0] OMIN = out_bound(1'b0);
  localparam logic signed [SW-1:0] RND = (FRAC_BITS > 0) ? (SW'(1) << (FRAC_BITS - 1)) : '0;

  if (D % PE != 0) begin : g_err_fold
    $error("modality_fusion: PE must divide D");
  end

  // ---------------------------------------------------------------- input registers (join)
  logic [M-1:0] full;
  logic [M*PE*IN_BITS-1:0] xr;
  logic take, pipe_en, v1;

  assign pipe_en = !out0_V_TVALID || out0_V_TREADY;
  assign take = (&full) && pipe_en;
  assign in_TREADY = ~full | {M{take}};

  for (genvar m = 0; m < M; m++) begin : g_in
    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) begin
        full[m] <= 1'b0;
      end else if (in_TVALID[m] && in_TREADY[m]) begin
        full[m] <= 1'b1;
      end else if (take) begin
        full[m] <= 1'b0;
      end
      if (in_TVALID[m] && in_TREADY[m]) begin
        xr[m*PE*IN_BITS +: PE*IN_BITS] <= in_TDATA[m*PE*IN_BITS +: PE*IN_BITS];
      end
    end
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      v1 <= 1'b0;
      out0_V_TVALID <= 1'b0;
    end else if (pipe_en) begin
      v1 <= take;
      out0_V_TVALID <= v1;
    end
  end

  // ---------------------------------------------------------------- datapath
  for (genvar j = 0; j < PE; j++) begin : g_lane
    logic signed [M*PB-1:0] p1;        // stage 1: the M products of this lane
    for (genvar m = 0; m < M; m++) begin : g_mul
      localparam logic signed [W_BITS-1:0] WM = WEIGHTS[m*W_BITS +: W_BITS];
      logic [IN_BITS-1:0] xi;
      logic signed [XB-1:0] x;
      assign xi = xr[(m*PE + j)*IN_BITS +: IN_BITS];
      if (IN_SIGNED != 0) begin : g_s
        assign x = $signed(xi);
      end else begin : g_u
        assign x = $signed({1'b0, xi});
      end
      always_ff @(posedge ap_clk) begin
        if (pipe_en) p1[m*PB +: PB] <= x * WM;
      end
    end

    logic signed [SW-1:0] acc, sh;
    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [CW-1:0] y;           // only the low OUT_BITS bits leave the kernel
    /* verilator lint_on UNUSEDSIGNAL */
    always_comb begin
      acc = RND;
      for (int m = 0; m < M; m++) acc = acc + SW'($signed(p1[m*PB +: PB]));
      sh = acc >>> FRAC_BITS;
      if (CW'(sh) > OMAX) y = OMAX;
      else if (CW'(sh) < OMIN) y = OMIN;
      else y = CW'(sh);
    end
    always_ff @(posedge ap_clk) begin
      if (pipe_en) out0_V_TDATA[j*OUT_BITS +: OUT_BITS] <= y[OUT_BITS-1:0];
    end
  end
endmodule
