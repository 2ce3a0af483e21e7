// neighbor_aggregate: reduce the K neighbour vectors of a query to one vector (sum, mean or max).
//
// Integer semantics: kernels/neighbor_aggregate/golden.py (the specification, bit exact).
//   in0 (features): per query K*D/PE beats, neighbour-major: beat k*D/PE+f carries channels
//                   f*PE .. f*PE+PE-1 of neighbour k, lane j at bits [j*IN_BITS +: IN_BITS]
//   in1 (ids):      per query K beats, the id of neighbour k; id == NULL_ID is padding (ignored,
//                   not counted)
//   out0:           per query D/PE beats, lane j at bits [j*OUT_BITS +: OUT_BITS]
//   sum:  y = S;   mean: y = (S*Rcp[n] + C) >>> SH;   max: y = max x;   n = 0 gives 0.
//
// Micro-architecture (one in0 beat per cycle, no stall unless out0 is back-pressured):
//   - id queue: 2 entries of one bit ("real neighbour"), filled from in1 independently of in0;
//     popped by the first in0 beat (f = 0) of each neighbour.
//   - accumulator bank acc[f], f = 0..D/PE-1 (PE lanes each), read-modify-write per in0 beat;
//     the first neighbour of a query overwrites it, so there is no clear cycle.
//   - hold buffer: a FIFO of max(D/PE, 2) entries {n, S}; the last neighbour's beats write the
//     final sums there, so query q streams out of it while query q+1 accumulates (the hold
//     buffer is the second accumulator buffer).
//   - output pipeline (global enable = !out0_TVALID || out0_TREADY): sum/max 1 register stage;
//     mean 3 stages (operands incl. the Rcp lookup, product, +C >>> SH).
//   All TREADYs are functions of registers only (no combinational valid->ready paths).
//
// The mean's reciprocal table and constants are computed at elaboration from K, IN_BITS and
// FRAC_BITS. n = 1 uses (2*S) * 2^(SH+P-1) instead of S * 2^(SH+P) (the same product), so the
// table holds SH+P bit values and the multiplier's second operand stays one bit narrower (for
// K = 20, INT8, P = 4: 14 x 25 bits signed, one DSP48E1 per lane).
module neighbor_aggregate #(
  parameter int K = 20, D = 64, PE = 8, IN_BITS = 8, IN_SIGNED = 1,
  parameter int MODE = 1,          // 0 sum, 1 mean, 2 max
  parameter int FRAC_BITS = 0,     // P, mean only
  parameter int ID_BITS = 11, NULL_ID = 0,
  parameter int OUT_BITS = 8       // = golden AggregateParams.out_bits
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [PE*IN_BITS-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  input  logic [ID_BITS-1:0]    in1_V_TDATA, input logic in1_V_TVALID, output logic in1_V_TREADY,
  output logic [PE*OUT_BITS-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY
);
  // ---------------------------------------------------------------- derived sizes
  localparam int FOLD = D / PE;                       // beats per neighbour vector
  localparam int CK = $clog2(K);                      // c = clog2(K)
  localparam int AW = (MODE == 2) ? IN_BITS : IN_BITS + CK;   // accumulator width
  localparam int OW = (MODE == 0) ? IN_BITS + CK : (MODE == 1) ? IN_BITS + FRAC_BITS : IN_BITS;
  localparam int FW = (FOLD > 1) ? $clog2(FOLD) : 1;  // beat-in-vector counter
  localparam int KW = (K > 1) ? $clog2(K) : 1;        // neighbour counter
  localparam int NW = $clog2(K + 1);                  // n = 0..K
  localparam int HD = (FOLD > 2) ? FOLD : 2;          // hold FIFO depth
  localparam int HPW = $clog2(HD);
  localparam int HCW = $clog2(HD + 1);
  localparam int NS = (MODE == 1) ? NW : 1;           // per entry: n (mean) or n != 0 (sum/max)
  localparam int HW = PE * AW + NS;

  // mean: SH = 2c + B_in + 2, table width RW = SH + P, product width PW
  localparam int SH = 2 * CK + IN_BITS + 2;
  localparam int RW = SH + FRAC_BITS;
  localparam int SB = AW + 1 + ((IN_SIGNED != 0) ? 0 : 1);    // signed width of the (doubled) sum
  localparam int PW = SB + RW + 1;                             // signed product width

  // mean: Rcp[n] = ceil(2^(SH+P) / n), entry 1 stored halved (2^(SH+P-1)) and S doubled
  function automatic logic [RW-1:0] rcp_entry(input int n);
    logic [RW:0] num, den;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [RW:0] q;             // q < 2^RW: the top bit is always 0
    /* verilator lint_on UNUSEDSIGNAL */
    num = {1'b1, {RW{1'b0}}};
    den = (RW + 1)'(n);
    if (n == 0) q = '0;
    else if (n == 1) q = num >> 1;
    else q = (num + den - 1'b1) / den;
    rcp_entry = q[RW-1:0];
  endfunction

  // ---------------------------------------------------------------- parameter checks
  if (D % PE != 0) begin : g_err_fold
    $error("neighbor_aggregate: PE must divide D");
  end
  if (OUT_BITS != OW) begin : g_err_out
    $error("neighbor_aggregate: OUT_BITS must equal the golden out_bits");
  end
  if (MODE < 0 || MODE > 2) begin : g_err_mode
    $error("neighbor_aggregate: MODE must be 0 (sum), 1 (mean) or 2 (max)");
  end
  if (MODE != 1 && FRAC_BITS != 0) begin : g_err_frac
    $error("neighbor_aggregate: FRAC_BITS is for the mean only");
  end
  if (MODE == 1 && PW > 64) begin : g_err_pw
    $error("neighbor_aggregate: the mean's product is wider than 64 bits");
  end

  // ---------------------------------------------------------------- id queue (real bits)
  logic [1:0] idq_cnt;
  logic idq0, idq1;
  logic id_real_in, id_push, id_pop;
  logic [FW-1:0] f;
  logic [KW-1:0] k;
  logic in0_fire;

  assign id_real_in = (in1_V_TDATA != ID_BITS'(NULL_ID));
  assign in1_V_TREADY = (idq_cnt != 2'd2);
  assign id_push = in1_V_TVALID && in1_V_TREADY;
  assign id_pop = in0_fire && (f == '0);

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      idq_cnt <= 2'd0;
    end else begin
      idq_cnt <= idq_cnt + {1'b0, id_push} - {1'b0, id_pop};
    end
    if (id_push && id_pop) begin
      if (idq_cnt == 2'd1) begin
        idq0 <= id_real_in;
      end else begin
        idq0 <= idq1;
        idq1 <= id_real_in;
      end
    end else if (id_push) begin
      if (idq_cnt == 2'd0) idq0 <= id_real_in;
      else idq1 <= id_real_in;
    end else if (id_pop) begin
      idq0 <= idq1;
    end
  end

  // ---------------------------------------------------------------- input side
  logic at_f0, last_f, first_k, last_k;
  logic real_r, real_cur;
  logic [NW-1:0] n_r, n_cur;
  logic [HCW-1:0] hold_cnt;

  assign at_f0 = (f == '0);
  assign last_f = (f == FW'(FOLD - 1));
  assign first_k = (k == '0);
  assign last_k = (k == KW'(K - 1));
  // f = 0 needs the neighbour's id; the last neighbour's beats need room in the hold FIFO
  assign in0_V_TREADY = (!at_f0 || idq_cnt != 2'd0) && (!last_k || hold_cnt != HCW'(HD));
  assign in0_fire = in0_V_TVALID && in0_V_TREADY;
  assign real_cur = at_f0 ? idq0 : real_r;
  // n including the current neighbour (n_r holds it after the neighbour's first beat)
  assign n_cur = at_f0 ? ((first_k ? NW'(0) : n_r) + NW'(idq0)) : n_r;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      f <= '0;
      k <= '0;
    end else if (in0_fire) begin
      if (last_f) begin
        f <= '0;
        k <= last_k ? '0 : k + 1'b1;
      end else begin
        f <= f + 1'b1;
      end
    end
    if (in0_fire && at_f0) begin
      n_r <= n_cur;
      real_r <= idq0;
    end
  end

  // accumulator bank: acc[f] <- (first neighbour ? identity : acc[f]) (+ | max) x
  logic [PE*AW-1:0] acc_mem [0:FOLD-1];
  logic [PE*AW-1:0] acc_rd, acc_nx;
  assign acc_rd = acc_mem[f];

  for (genvar j = 0; j < PE; j++) begin : g_lane
    logic [IN_BITS-1:0] xi;
    logic [AW-1:0] x, old, nx;
    assign xi = in0_V_TDATA[j*IN_BITS +: IN_BITS];
    assign old = acc_rd[j*AW +: AW];
    if (MODE == 2) begin : g_max
      localparam logic [AW-1:0] MINV = (IN_SIGNED != 0) ? {1'b1, {(AW - 1){1'b0}}} : '0;
      logic [AW-1:0] base, xe;
      assign x = xi;
      assign base = first_k ? MINV : old;
      assign xe = real_cur ? x : MINV;
      if (IN_SIGNED != 0) begin : g_s
        assign nx = ($signed(xe) > $signed(base)) ? xe : base;
      end else begin : g_u
        assign nx = (xe > base) ? xe : base;
      end
    end else begin : g_add
      if (IN_SIGNED != 0) begin : g_s
        assign x = AW'($signed(xi));
      end else begin : g_u
        assign x = AW'(xi);
      end
      assign nx = (first_k ? AW'(0) : old) + (real_cur ? x : AW'(0));
    end
    assign acc_nx[j*AW +: AW] = nx;
  end

  always_ff @(posedge ap_clk) begin
    if (in0_fire) acc_mem[f] <= acc_nx;
  end

  // ---------------------------------------------------------------- hold FIFO
  logic [HW-1:0] hold_mem [0:HD-1];
  logic [HPW-1:0] hold_wp, hold_rp;
  logic [HW-1:0] hold_q;
  logic [NS-1:0] n_store;
  logic hold_wr, hold_rd, pipe_en;

  if (MODE == 1) begin : g_nstore_mean
    assign n_store = n_cur;
  end else begin : g_nstore_flag
    assign n_store = (n_cur != '0);
  end

  assign hold_wr = in0_fire && last_k;
  assign pipe_en = !out0_V_TVALID || out0_V_TREADY;
  assign hold_rd = (hold_cnt != '0) && pipe_en;
  assign hold_q = hold_mem[hold_rp];

  always_ff @(posedge ap_clk) begin
    if (hold_wr) hold_mem[hold_wp] <= {n_store, acc_nx};
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      hold_wp <= '0;
      hold_rp <= '0;
      hold_cnt <= '0;
    end else begin
      if (hold_wr) hold_wp <= (hold_wp == HPW'(HD - 1)) ? '0 : hold_wp + 1'b1;
      if (hold_rd) hold_rp <= (hold_rp == HPW'(HD - 1)) ? '0 : hold_rp + 1'b1;
      hold_cnt <= hold_cnt + HCW'(hold_wr) - HCW'(hold_rd);
    end
  end

  // ---------------------------------------------------------------- output pipeline
  logic [NS-1:0] hold_n;
  logic [PE*AW-1:0] hold_s;
  assign {hold_n, hold_s} = hold_q;

  if (MODE == 1) begin : g_mean
    localparam logic [PW-1:0] RND = (PW'(1) << (SH - 1)) + (PW'(1) << (SH - 2 - CK));

    logic [(K+1)*RW-1:0] rcp_rom;
    for (genvar i = 0; i <= K; i++) begin : g_rcp
      assign rcp_rom[i*RW +: RW] = rcp_entry(i);
    end

    logic v1, v2;
    logic [RW-1:0] r1;            // Rcp of the entry, shared by the lanes
    logic dbl;
    assign dbl = (hold_n == NW'(1));

    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) begin
        v1 <= 1'b0;
        v2 <= 1'b0;
        out0_V_TVALID <= 1'b0;
      end else if (pipe_en) begin
        v1 <= hold_cnt != '0;
        v2 <= v1;
        out0_V_TVALID <= v2;
      end
      if (pipe_en) r1 <= rcp_rom[hold_n*RW +: RW];
    end

    for (genvar j = 0; j < PE; j++) begin : g_lane
      logic [AW-1:0] s;
      logic signed [SB-1:0] s_ext, s1;
      logic signed [PW-1:0] p2;
      /* verilator lint_off UNUSEDSIGNAL */
      logic signed [PW-1:0] y;    // only bits [SH +: OW] are the result
      /* verilator lint_on UNUSEDSIGNAL */
      assign s = hold_s[j*AW +: AW];
      if (IN_SIGNED != 0) begin : g_s
        assign s_ext = SB'($signed(s));
      end else begin : g_u
        assign s_ext = SB'(s);
      end
      assign y = p2 + $signed(RND);
      always_ff @(posedge ap_clk) begin
        if (pipe_en) begin
          s1 <= dbl ? (s_ext <<< 1) : s_ext;
          p2 <= s1 * $signed({1'b0, r1});
          out0_V_TDATA[j*OW +: OW] <= y[SH +: OW];
        end
      end
    end
  end else begin : g_direct
    // sum: y = S (n = 0 gives 0 already); max: y = n != 0 ? max : 0
    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) out0_V_TVALID <= 1'b0;
      else if (pipe_en) out0_V_TVALID <= hold_cnt != '0;
    end
    for (genvar j = 0; j < PE; j++) begin : g_lane
      always_ff @(posedge ap_clk) begin
        if (pipe_en) begin
          if (MODE == 2) out0_V_TDATA[j*OW +: OW] <= hold_n[0] ? hold_s[j*AW +: AW] : '0;
          else out0_V_TDATA[j*OW +: OW] <= hold_s[j*AW +: AW];
        end
      end
    end
  end
endmodule
