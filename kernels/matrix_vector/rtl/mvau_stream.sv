// mvau_stream: matrix-vector product y = x W (FINN's MVAU without activation), streaming, folded.
//
// Integer semantics: kernels/matrix_vector/golden.py (the specification, bit exact).
//   y[o] = sum_{i < MW} x[i] * W[i, o],  o in [0, MH)
//   x: IN_BITS bits, signed (two's complement) if IN_SIGNED else unsigned; W: W_BITS bits signed.
//   out0 carries the low OUT_BITS bits of the exact sum (signed); the caller chooses OUT_BITS
//   so that every y fits (golden MvauParams.min_out_bits), then out0 is exact. All arithmetic
//   below is exact or modulo 2^OUT_BITS, which gives the same low OUT_BITS bits.
//
// Folding: NF = MH/PE output folds, SF = MW/SIMD input folds.
//   in0:  per vector SF beats, beat s lane j = x[s*SIMD + j]   at [j*IN_BITS  +: IN_BITS]
//   out0: per vector NF beats, beat n lane p = y[n*PE + p]     at [p*OUT_BITS +: OUT_BITS]
//   weights: ROM of NF*SF words of PE*SIMD*W_BITS bits, loaded by $readmemh(WEIGHT_FILE);
//            word n*SF + s holds W[s*SIMD + j, n*PE + p] at bits [(p*SIMD + j)*W_BITS +: W_BITS]
//            (golden.write_weight_mem writes the file: one hex word per line).
//
// Micro-architecture (one MAC cycle per (n, s), NF*SF cycles per vector, no bubbles):
//   - input buffer: 2 banks of SF words (double buffering). in0 writes bank wb while the MAC
//     side replays bank rb NF times; a bank is "full" from its last write to its last read.
//     in0_V_TREADY = !full[wb] (registers only).
//   - issue (counters s, n, ROM address, bank rb): one (n, s) per cycle while full[rb] and the
//     output side has a free slot (credit counter rsv < CAP, see below).
//   - stage 1: synchronous reads x1 <= buf[rb, s], w1 <= ROM[n*SF + s] (the ROM's read
//     register; RAM_STYLE = 1 puts the ROM into block RAM, 0 leaves it to the tool, which
//     Yosys maps to LUT logic).
//   - stage 2: PE*SIMD products x*w (PW = IN_BITS + W_BITS bits), registered; LUT_MAC = 1
//     builds them as shift-and-add (no $mul: Yosys ignores use_dsp) and marks them
//     (* use_dsp = "no" *) for Vivado; LUT_MAC = 0 writes x*w and leaves it to the DSP48E1
//     mapping (Yosys maps products from 9 result bits on).
//   - adder tree per PE: clog2(SIMD) levels, a register after every second level and after the
//     last one (T = ceil(clog2(SIMD)/2) stages); widths grow by one bit per level up to OUT_BITS.
//   - accumulate: acc <= (s == 0 ? 0 : acc) + tree; at s == SF-1 the new value (PE lanes) is
//     written into the output FIFO.
//   - output FIFO (distributed RAM, FD words) + output register out0_V_TDATA. The datapath
//     never stalls: a beat is only issued while rsv < CAP = FD + 1, where rsv counts results
//     issued (at s == SF-1) and not yet taken by out0. A result is in flight for 4 + T cycles,
//     so CAP = ceil((4 + T)/SF) + 1 keeps the issue rate at one per cycle without back-pressure.
//     out0_V_TREADY only moves the FIFO read side; no TREADY depends on a TVALID or on out0.
module mvau_stream #(
  parameter int MW = 64, MH = 64, PE = 16, SIMD = 16,
  parameter int IN_BITS = 4, IN_SIGNED = 1, W_BITS = 4,
  parameter int OUT_BITS = 10,     // signed output width (must hold every y)
  parameter WEIGHT_FILE = "",      // $readmemh file (golden.write_weight_mem); "" = no init
  parameter int LUT_MAC = 1,       // 1: LUT multipliers, 0: Yosys may use DSP48E1
  parameter int RAM_STYLE = 0      // weight ROM: 0 tool's choice, 1 block RAM (FINN's ram_style)
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [SIMD*IN_BITS-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  output logic [PE*OUT_BITS-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY
);
  // ---------------------------------------------------------------- derived sizes
  localparam int NF = MH / PE;
  localparam int SF = MW / SIMD;
  localparam int WORDS = NF * SF;
  localparam int WW = PE * SIMD * W_BITS;             // ROM word width
  localparam int SBW = (SF > 1) ? $clog2(SF) : 1;     // s counter
  localparam int NBW = (NF > 1) ? $clog2(NF) : 1;     // n counter
  localparam int ABW = (WORDS > 1) ? $clog2(WORDS) : 1;
  localparam int PW = IN_BITS + W_BITS;               // exact signed product width
  localparam int LV = (SIMD > 1) ? $clog2(SIMD) : 0;  // adder tree levels
  localparam int T = (LV + 1) / 2;                    // registered tree stages
  localparam int LAT = 2 + T;                         // issue -> accumulate stage
  localparam int FD0 = (4 + T + SF - 1) / SF;         // results in flight at full rate
  localparam int FD = (FD0 > 2) ? FD0 : 2;            // output FIFO depth
  localparam int CAP = FD + 1;                        // + the output register
  localparam int FPW = $clog2(FD);
  localparam int RCW = $clog2(CAP + 1);

  // nodes and width of adder-tree level l (level 0 = products)
  function automatic int nodes(input int l);
    nodes = (SIMD + (1 << l) - 1) >> l;
  endfunction
  function automatic int lw(input int l);
    lw = (PW + l < OUT_BITS) ? PW + l : OUT_BITS;
  endfunction

  // x * w as shift-and-add (no $mul cell: Yosys ignores use_dsp and would map wide products to
  // DSP48E1; Vivado honours the attribute on the product wire as well)
  function automatic logic signed [PW-1:0] mul_lut(input logic signed [IN_BITS:0] a,
                                                   input logic signed [W_BITS-1:0] b);
    logic signed [PW-1:0] ae, acc;
    ae = PW'(a);
    acc = '0;
    for (int k = 0; k < W_BITS - 1; k++) begin
      if (b[k]) acc = acc + (ae <<< k);
    end
    if (b[W_BITS-1]) acc = acc - (ae <<< (W_BITS - 1));
    mul_lut = acc;
  endfunction

  // ---------------------------------------------------------------- parameter checks
  if (MH % PE != 0) begin : g_err_pe
    $error("mvau_stream: PE must divide MH");
  end
  if (MW % SIMD != 0) begin : g_err_simd
    $error("mvau_stream: SIMD must divide MW");
  end
  if (OUT_BITS < 2 || IN_BITS < 1 || W_BITS < 2) begin : g_err_bits
    $error("mvau_stream: unsupported widths");
  end
  if (LUT_MAC != 0 && LUT_MAC != 1) begin : g_err_mac
    $error("mvau_stream: LUT_MAC must be 0 or 1");
  end
  if (RAM_STYLE != 0 && RAM_STYLE != 1) begin : g_err_ram
    $error("mvau_stream: RAM_STYLE must be 0 (auto) or 1 (block)");
  end

  // ---------------------------------------------------------------- input buffer (write side)
  logic [SIMD*IN_BITS-1:0] ibuf [0:(2 << SBW)-1];
  logic [1:0] full;
  logic wb, rb;
  logic [SBW-1:0] ws, s;
  logic in_fire, in_last;
  logic [1:0] set_full, clr_full;

  assign in0_V_TREADY = !full[wb];
  assign in_fire = in0_V_TVALID && in0_V_TREADY;
  assign in_last = (ws == SBW'(SF - 1));
  assign set_full = (in_fire && in_last) ? (wb ? 2'b10 : 2'b01) : 2'b00;

  always_ff @(posedge ap_clk) begin
    if (in_fire) ibuf[{wb, ws}] <= in0_V_TDATA;
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      ws <= '0;
      wb <= 1'b0;
      full <= 2'b00;
    end else begin
      if (in_fire) begin
        ws <= in_last ? '0 : ws + 1'b1;
        if (in_last) wb <= !wb;
      end
      full <= (full | set_full) & ~clr_full;
    end
  end

  // ---------------------------------------------------------------- issue
  logic [NBW-1:0] n;
  logic [ABW-1:0] addr;
  logic [RCW-1:0] rsv;
  logic issue, last_s, last_n, out_fire;

  assign last_s = (s == SBW'(SF - 1));
  assign last_n = (n == NBW'(NF - 1));
  assign issue = full[rb] && (rsv != RCW'(CAP));
  assign clr_full = (issue && last_s && last_n) ? (rb ? 2'b10 : 2'b01) : 2'b00;
  assign out_fire = out0_V_TVALID && out0_V_TREADY;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      s <= '0;
      n <= '0;
      addr <= '0;
      rb <= 1'b0;
      rsv <= '0;
    end else begin
      if (issue) begin
        s <= last_s ? '0 : s + 1'b1;
        if (last_s) n <= last_n ? '0 : n + 1'b1;
        addr <= (last_s && last_n) ? '0 : addr + 1'b1;
        if (last_s && last_n) rb <= !rb;
      end
      rsv <= rsv + RCW'(issue && last_s) - RCW'(out_fire);
    end
  end

  // ---------------------------------------------------------------- stage 1: reads
  // weight ROM, read synchronously (w1 is the read port's register); RAM_STYLE = 0 leaves the
  // implementation to the tool (Yosys: LUT logic), 1 sets rom_style = "block" (Yosys, Vivado)
  logic [SIMD*IN_BITS-1:0] x1;
  logic [WW-1:0] w1;
  always_ff @(posedge ap_clk) begin
    x1 <= ibuf[{rb, s}];
  end

  if (RAM_STYLE == 1) begin : g_rom_block
    /* verilator lint_off UNDRIVEN */
    (* rom_style = "block", ram_style = "block" *)
    logic [WW-1:0] wrom [0:WORDS-1];   // written by $readmemh only
    /* verilator lint_on UNDRIVEN */
    if (WEIGHT_FILE != "") begin : g_init
      initial $readmemh(WEIGHT_FILE, wrom);
    end
    always_ff @(posedge ap_clk) w1 <= wrom[addr];
  end else begin : g_rom_auto
    /* verilator lint_off UNDRIVEN */
    logic [WW-1:0] wrom [0:WORDS-1];
    /* verilator lint_on UNDRIVEN */
    if (WEIGHT_FILE != "") begin : g_init
      initial $readmemh(WEIGHT_FILE, wrom);
    end
    always_ff @(posedge ap_clk) w1 <= wrom[addr];
  end

  // valid / first (s == 0) / last (s == SF-1) along the fixed-latency datapath
  logic [LAT-1:0] vp, fp, lp;
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) vp <= '0;
    else vp <= {vp[LAT-2:0], issue};
    fp <= {fp[LAT-2:0], s == '0};
    lp <= {lp[LAT-2:0], last_s};
  end

  // ---------------------------------------------------------------- MACs, adder trees, accumulators
  logic fifo_wr;
  logic [PE*OUT_BITS-1:0] fifo_din;
  assign fifo_wr = vp[LAT-1] && lp[LAT-1];

  for (genvar p = 0; p < PE; p++) begin : g_pe
    for (genvar l = 0; l <= LV; l++) begin : g_lv
      localparam int N = nodes(l);
      localparam int W = lw(l);
      logic [N*W-1:0] v;
      if (l == 0) begin : g_mul
        logic [N*W-1:0] pr;
        for (genvar j = 0; j < SIMD; j++) begin : g_j
          logic signed [IN_BITS:0] xj;
          logic signed [W_BITS-1:0] wj;
          if (IN_SIGNED != 0) begin : g_s
            assign xj = (IN_BITS + 1)'($signed(x1[j*IN_BITS +: IN_BITS]));
          end else begin : g_u
            assign xj = {1'b0, x1[j*IN_BITS +: IN_BITS]};
          end
          assign wj = w1[(p*SIMD + j)*W_BITS +: W_BITS];
          if (LUT_MAC != 0) begin : g_lut
            /* verilator lint_off UNUSEDSIGNAL */
            (* use_dsp = "no" *) logic signed [PW-1:0] prod;   // low W bits used (W < PW: mod 2^OUT_BITS)
            /* verilator lint_on UNUSEDSIGNAL */
            assign prod = mul_lut(xj, wj);
            assign pr[j*W +: W] = prod[W-1:0];
          end else begin : g_dsp
            /* verilator lint_off UNUSEDSIGNAL */
            logic signed [PW-1:0] prod;
            /* verilator lint_on UNUSEDSIGNAL */
            assign prod = PW'(xj * wj);
            assign pr[j*W +: W] = prod[W-1:0];
          end
        end
        always_ff @(posedge ap_clk) v <= pr;
      end else begin : g_add
        localparam int NP = nodes(l - 1);
        localparam int WP = lw(l - 1);
        logic [N*W-1:0] sm;
        for (genvar i = 0; i < N; i++) begin : g_n
          if (2 * i + 1 < NP) begin : g_two
            assign sm[i*W +: W] = W'($signed(g_lv[l-1].v[2*i*WP +: WP]))
                                + W'($signed(g_lv[l-1].v[(2*i+1)*WP +: WP]));
          end else begin : g_one
            assign sm[i*W +: W] = W'($signed(g_lv[l-1].v[2*i*WP +: WP]));
          end
        end
        if (l % 2 == 0 || l == LV) begin : g_reg
          always_ff @(posedge ap_clk) v <= sm;
        end else begin : g_comb
          assign v = sm;
        end
      end
    end

    logic [OUT_BITS-1:0] acc, tree, nx;
    assign tree = OUT_BITS'($signed(g_lv[LV].v));
    assign nx = (fp[LAT-1] ? '0 : acc) + tree;
    always_ff @(posedge ap_clk) begin
      if (vp[LAT-1]) acc <= nx;
    end
    assign fifo_din[p*OUT_BITS +: OUT_BITS] = nx;
  end

  // ---------------------------------------------------------------- output FIFO + register
  logic [PE*OUT_BITS-1:0] fifo_mem [0:FD-1];
  logic [FPW-1:0] fwp, frp;
  logic [FPW:0] fcnt;
  logic fifo_rd;

  assign fifo_rd = (fcnt != '0) && (!out0_V_TVALID || out0_V_TREADY);

  always_ff @(posedge ap_clk) begin
    if (fifo_wr) fifo_mem[fwp] <= fifo_din;
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      fwp <= '0;
      frp <= '0;
      fcnt <= '0;
      out0_V_TVALID <= 1'b0;
    end else begin
      if (fifo_wr) fwp <= (fwp == FPW'(FD - 1)) ? '0 : fwp + 1'b1;
      if (fifo_rd) frp <= (frp == FPW'(FD - 1)) ? '0 : frp + 1'b1;
      fcnt <= fcnt + (FPW + 1)'(fifo_wr) - (FPW + 1)'(fifo_rd);
      if (fifo_rd) out0_V_TVALID <= 1'b1;
      else if (out0_V_TREADY) out0_V_TVALID <= 1'b0;
    end
    if (fifo_rd) out0_V_TDATA <= fifo_mem[frp];
  end
endmodule
