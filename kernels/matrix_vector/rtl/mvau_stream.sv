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
//   - stage 1: synchronous reads w1 <= ROM[n*SF + s] (the ROM's read register; RAM_STYLE = 1
//     puts the ROM into block RAM, 0 leaves it to the tool, which Yosys maps to LUT logic) and
//     the input word buf[rb, s] (LUT_MAC = 0: x1; LUT_MAC = 1: the lanes extended by one bit,
//     xe1, and the lane-pair sums ps1 = x[2k] + x[2k+1], shared by all PEs).
//   - LUT_MAC = 1, per PE, by weight bit planes (no products):
//       y_s = sum_j x_j w_j = sum_{b < W_BITS-1} 2^b S_b - 2^(W_BITS-1) S_{W_BITS-1},
//       S_b = sum_j (w_j[b] ? x_j : 0)        (two's complement w; x signed or unsigned)
//     leaves: a lane pair (2k, 2k+1) of plane b is one 4:1 mux of {0, x[2k], x[2k+1], ps[k]}
//     selected by the two weight bits (a LUT5 per bit). Stage 2 registers the even leaves
//     (ma) and the odd leaves' weight bits (sb0/sb1; x2/ps2 are xe1/ps1 one cycle later); the
//     first adder level adds ma (a register: it feeds the CARRY4 DI inputs directly) and the
//     odd leaf, whose mux folds into the adder's LUT6 (no separate mux LUT). Then a binary
//     tree per plane (widths exact, at most OUT_BITS - b), and a binary tree over the planes
//     (shifted adds, the top plane subtracted). The G = LT + LC adder levels (folded level,
//     plane tree, plane combine) get a register after every second level and after the last
//     (NR = ceil(G/2) stages): at most two chained adders between registers (SIMD = 16,
//     W_BITS = 4: 2 LUT levels + 5 carry cells). Unregistered levels are kept apart with
//     (* keep *) (else Yosys merges them into one $macc and loses the folding).
//   - LUT_MAC = 0: PE*SIMD products x*w (PW = IN_BITS + W_BITS bits), registered, left to the
//     DSP48E1 mapping (Yosys maps products from 9 result bits on), and an adder tree per PE:
//     clog2(SIMD) levels, a register after every second level and after the last one
//     (T = ceil(clog2(SIMD)/2) stages); widths grow by one bit per level up to OUT_BITS.
//   - accumulate: acc <= tree + (s == 0 ? 0 : acc); at s == SF-1 the new value (PE lanes) is
//     written into the output FIFO. The accumulate stage is LAT cycles after the issue
//     (LUT_MAC = 1: 2 + NR, LUT_MAC = 0: 2 + T).
//   - output FIFO (distributed RAM, FD words) + output register out0_V_TDATA. The datapath
//     never stalls: a beat is only issued while rsv < CAP = FD + 1, where rsv counts results
//     issued (at s == SF-1) and not yet taken by out0. A result is in flight for LAT + 2
//     cycles, so CAP = ceil((LAT + 2)/SF) + 1 keeps the issue rate at one per cycle without
//     back-pressure. out0_V_TREADY only moves the FIFO read side; no TREADY depends on a
//     TVALID or on out0.
module mvau_stream #(
  parameter int MW = 64, MH = 64, PE = 16, SIMD = 16,
  parameter int IN_BITS = 4, IN_SIGNED = 1, W_BITS = 4,
  parameter int OUT_BITS = 10,     // signed output width (must hold every y)
  parameter WEIGHT_FILE = "",      // $readmemh file (golden.write_weight_mem); "" = no init
  parameter int LUT_MAC = 1,       // 1: LUT datapath (bit planes), 0: Yosys may use DSP48E1
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
  localparam int LV = (SIMD > 1) ? $clog2(SIMD) : 0;  // adder tree levels (LUT_MAC = 0)
  localparam int T = (LV + 1) / 2;                    // registered tree stages (LUT_MAC = 0)
  // LUT_MAC = 1 (bit planes, see below)
  localparam int XW = (SIMD > 1) ? IN_BITS + 1 : IN_BITS;  // leaf (pair sum) width
  localparam int NPR = (SIMD + 1) / 2;                // leaves (lane pairs) per plane
  localparam int NL1 = (NPR + 1) / 2;                 // nodes after the folded first level
  localparam int LP = (NL1 > 1) ? $clog2(NL1) : 0;    // plane tree levels after that
  localparam int LT = 1 + LP;                         // plane tree levels in all
  localparam int LC = $clog2(W_BITS);                 // plane combine levels
  localparam int G = LT + LC;                         // adder levels (folded, tree, combine)
  localparam int NR = (G + 1) / 2;                    // registered: every second one and the last
  localparam int SWS = XW + LT + ((IN_SIGNED != 0) ? 0 : 1);  // signed width of a plane sum
  // issue -> accumulate stage: read, [products, T tree stages] or [leaf mux, folded level,
  // NR adder stages]
  localparam int LAT = (LUT_MAC != 0) ? 2 + NR : 2 + T;
  localparam int FD0 = (LAT + 2 + SF - 1) / SF;       // results in flight at full rate
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

  function automatic int imin(input int a, input int b);
    imin = (a < b) ? a : b;
  endfunction
  function automatic int imax(input int a, input int b);
    imax = (a > b) ? a : b;
  endfunction
  // LUT_MAC = 1: plane tree level l (1 = folded first level) of plane b: nodes, width (exact,
  // at most OUT_BITS - b: plane b is weighted 2^b, so its sum is needed modulo 2^(OUT_BITS-b))
  function automatic int tn(input int l);
    tn = (NL1 + (1 << (l - 1)) - 1) >> (l - 1);
  endfunction
  function automatic int tw(input int l, input int b);
    tw = imax(1, imin(XW + l, OUT_BITS - b));
  endfunction
  // plane combine level k (0 = the plane sums): nodes; node i holds planes [i*2^k, (i+1)*2^k)
  function automatic int cn(input int k);
    cn = (W_BITS + (1 << k) - 1) >> k;
  endfunction
  // the node is the top plane alone (weight -2^(W_BITS-1)), carried as +S until subtracted
  function automatic bit pneg(input int k, input int i);
    pneg = ((i << k) == W_BITS - 1);
  endfunction
  // raw: a plane sum as is (signed iff IN_SIGNED); otherwise a signed combination
  function automatic bit raw(input int k, input int i);
    raw = (k == 0) || pneg(k, i);
  endfunction
  function automatic int cw(input int k, input int i);
    if (raw(k, i)) cw = tw(LT, i << k);
    else cw = imax(1, imin(SWS + imin(1 << k, W_BITS - (i << k)), OUT_BITS - (i << k)));
  endfunction
  // one leaf: the sum of the lanes (pair a, b; ab = a + b) whose weight bit (sa, sb) is set
  function automatic logic [XW-1:0] leaf(input logic sa, input logic sb, input logic [XW-1:0] a,
                                         input logic [XW-1:0] b, input logic [XW-1:0] ab);
    case ({sb, sa})
      2'b00: leaf = '0;
      2'b01: leaf = a;
      2'b10: leaf = b;
      default: leaf = ab;
    endcase
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
  // x1: the input word (LUT_MAC = 0; LUT_MAC = 1 registers it extended, with pair sums, below)
  /* verilator lint_off UNUSEDSIGNAL */
  logic [SIMD*IN_BITS-1:0] x1;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [WW-1:0] w1;
  if (LUT_MAC == 0) begin : g_x1
    always_ff @(posedge ap_clk) x1 <= ibuf[{rb, s}];
  end else begin : g_nox1
    assign x1 = '0;
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

  // x lanes extended to XW bits (sign or zero) and the shared pair sums xe[2k] + xe[2k+1]
  // (LUT_MAC = 1 only); x2 / ps2: the same one cycle later (the folded leaves' stage)
  /* verilator lint_off UNUSEDSIGNAL */
  logic [SIMD*XW-1:0] xe1, x2;     // (the last lane of ps*, and lanes 4i+2.. of xe1, may be unused)
  logic [NPR*XW-1:0] ps1, ps2;
  /* verilator lint_on UNUSEDSIGNAL */
  if (LUT_MAC != 0) begin : g_xe
    logic [SIMD*IN_BITS-1:0] rd;
    logic [SIMD*XW-1:0] xr;
    logic [NPR*XW-1:0] pr;
    assign rd = ibuf[{rb, s}];
    for (genvar j = 0; j < SIMD; j++) begin : g_j
      if (IN_SIGNED != 0) begin : g_s
        assign xr[j*XW +: XW] = XW'($signed(rd[j*IN_BITS +: IN_BITS]));
      end else begin : g_u
        assign xr[j*XW +: XW] = XW'(rd[j*IN_BITS +: IN_BITS]);
      end
    end
    for (genvar k = 0; k < NPR; k++) begin : g_k
      if (2 * k + 1 < SIMD) begin : g_two
        assign pr[k*XW +: XW] = xr[2*k*XW +: XW] + xr[(2*k+1)*XW +: XW];
      end else begin : g_one
        assign pr[k*XW +: XW] = xr[2*k*XW +: XW];
      end
    end
    always_ff @(posedge ap_clk) begin
      xe1 <= xr;
      ps1 <= pr;
      x2 <= xe1;
      ps2 <= ps1;
    end
  end else begin : g_noxe
    assign xe1 = '0;
    assign ps1 = '0;
    assign x2 = '0;
    assign ps2 = '0;
  end

  for (genvar p = 0; p < PE; p++) begin : g_pe
    logic [OUT_BITS-1:0] acc, tree, nx;

    if (LUT_MAC != 0) begin : g_bp
      // ---- bit planes: S_b = sum_j (w_j[b] ? x_j : 0), one adder tree per plane b
      for (genvar b = 0; b < W_BITS; b++) begin : g_pl
        for (genvar l = 1; l <= LT; l++) begin : g_tl
          localparam int N = tn(l);
          localparam int W = tw(l, b);
          (* keep *) logic [N*W-1:0] v;   // keep: no $macc merging of unregistered levels
          if (l == 1) begin : g_fold
            // node i = leaf 2i (muxed from the stage-1 registers, registered: a plain operand,
            // so it can drive the carry chain's DI) + leaf 2i+1 (muxed one cycle later from the
            // delayed x / pair sums and its registered weight bits; the mux folds into the
            // adder's LUTs: one LUT6 per sum bit)
            localparam int W0 = tw(0, b);
            logic [N*W-1:0] sm;
            for (genvar i = 0; i < N; i++) begin : g_n
              localparam int JA = 4 * i;      // leaf 2i: lanes JA, JA + 1
              localparam int JB = 4 * i + 2;  // leaf 2i+1: lanes JB, JB + 1
              // second lane of a leaf (if any; a lone last lane has its select tied to 0)
              localparam int JA1 = (JA + 1 < SIMD) ? JA + 1 : JA;
              localparam int JB1 = (JB + 1 < SIMD) ? JB + 1 : SIMD - 1;
              logic [W0-1:0] ma;
              always_ff @(posedge ap_clk) begin
                ma <= W0'(leaf(w1[(p*SIMD + JA)*W_BITS + b],
                               (JA1 != JA) ? w1[(p*SIMD + JA1)*W_BITS + b] : 1'b0,
                               xe1[JA*XW +: XW], xe1[JA1*XW +: XW], ps1[2*i*XW +: XW]));
              end
              if (JB < SIMD) begin : g_two
                logic sb0, sb1;
                logic [W0-1:0] mb;
                always_ff @(posedge ap_clk) begin
                  sb0 <= w1[(p*SIMD + JB)*W_BITS + b];
                  sb1 <= (JB1 != JB) ? w1[(p*SIMD + JB1)*W_BITS + b] : 1'b0;
                end
                assign mb = W0'(leaf(sb0, sb1, x2[JB*XW +: XW], x2[JB1*XW +: XW],
                                     ps2[(2*i+1)*XW +: XW]));
                if (IN_SIGNED != 0) begin : g_s
                  assign sm[i*W +: W] = W'($signed(ma)) + W'($signed(mb));
                end else begin : g_u
                  assign sm[i*W +: W] = W'(ma) + W'(mb);
                end
              end else begin : g_one
                if (IN_SIGNED != 0) begin : g_s
                  assign sm[i*W +: W] = W'($signed(ma));
                end else begin : g_u
                  assign sm[i*W +: W] = W'(ma);
                end
              end
            end
            assign v = sm;   // level 1: never registered (G >= 2: level 2 or the combine is)
          end else begin : g_add
            localparam int NP = tn(l - 1);
            localparam int WP = tw(l - 1, b);
            logic [N*W-1:0] sm;
            for (genvar i = 0; i < N; i++) begin : g_n
              if (2 * i + 1 < NP) begin : g_two
                if (IN_SIGNED != 0) begin : g_s
                  assign sm[i*W +: W] = W'($signed(g_tl[l-1].v[2*i*WP +: WP]))
                                      + W'($signed(g_tl[l-1].v[(2*i+1)*WP +: WP]));
                end else begin : g_u
                  assign sm[i*W +: W] = W'(g_tl[l-1].v[2*i*WP +: WP])
                                      + W'(g_tl[l-1].v[(2*i+1)*WP +: WP]);
                end
              end else begin : g_one
                if (IN_SIGNED != 0) begin : g_s
                  assign sm[i*W +: W] = W'($signed(g_tl[l-1].v[2*i*WP +: WP]));
                end else begin : g_u
                  assign sm[i*W +: W] = W'(g_tl[l-1].v[2*i*WP +: WP]);
                end
              end
            end
            if (l % 2 == 0) begin : g_reg        // (l < G)
              always_ff @(posedge ap_clk) v <= sm;
            end else begin : g_comb
              assign v = sm;
            end
          end
        end
      end

      // ---- combine the planes: sum_{b < W_BITS-1} 2^b S_b - 2^(W_BITS-1) S_{W_BITS-1}, a
      // binary tree over the planes (node i of level k: planes [i*2^k, (i+1)*2^k), relative
      // weight 2^(i*2^k)), registered after every level. The top plane is subtracted where it
      // is first combined; until then it is carried as the plain S (a "raw" node).
      for (genvar k = 0; k <= LC; k++) begin : g_cl
        for (genvar i = 0; i < cn(k); i++) begin : g_cn
          localparam int R = cw(k, i);
          /* verilator lint_off UNUSEDSIGNAL */
          (* keep *) logic [R-1:0] v;   // unused: a node of planes >= OUT_BITS only
          /* verilator lint_on UNUSEDSIGNAL */
          if (k == 0) begin : g_leaf
            assign v = g_pl[i].g_tl[LT].v;
          end else begin : g_node
            localparam int D = 1 << (k - 1);
            logic [R-1:0] le, nv;
            if (raw(k - 1, 2 * i) && IN_SIGNED == 0) begin : g_lu
              assign le = R'(g_cl[k-1].g_cn[2*i].v);
            end else begin : g_ls
              assign le = R'($signed(g_cl[k-1].g_cn[2*i].v));
            end
            if (2 * i + 1 < cn(k - 1) && D < R) begin : g_two
              logic [R-D-1:0] ue;
              if (raw(k - 1, 2 * i + 1) && IN_SIGNED == 0) begin : g_uu
                assign ue = (R-D)'(g_cl[k-1].g_cn[2*i+1].v);
              end else begin : g_us
                assign ue = (R-D)'($signed(g_cl[k-1].g_cn[2*i+1].v));
              end
              if (pneg(k - 1, 2 * i + 1)) begin : g_sub
                assign nv = {le[R-1:D] - ue, le[D-1:0]};
              end else begin : g_plus
                assign nv = {le[R-1:D] + ue, le[D-1:0]};
              end
            end else begin : g_one
              assign nv = le;   // no upper node, or it only holds weights >= 2^OUT_BITS
            end
            if ((LT + k) % 2 == 0 || k == LC) begin : g_reg
              always_ff @(posedge ap_clk) v <= nv;
            end else begin : g_comb
              assign v = nv;
            end
          end
        end
      end
      assign tree = OUT_BITS'($signed(g_cl[LC].g_cn[0].v));
    end else begin : g_dsp
      // ---- products x*w (the tool may use DSP48E1), adder tree over the SIMD products
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
            /* verilator lint_off UNUSEDSIGNAL */
            logic signed [PW-1:0] prod;   // low W bits used (W < PW: mod 2^OUT_BITS)
            /* verilator lint_on UNUSEDSIGNAL */
            assign prod = PW'(xj * wj);
            assign pr[j*W +: W] = prod[W-1:0];
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
      assign tree = OUT_BITS'($signed(g_lv[LV].v));
    end

    assign nx = tree + (fp[LAT-1] ? '0 : acc);   // tree first: the carry chain's DI operand (no LUT)
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
