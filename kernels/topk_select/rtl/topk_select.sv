// topk_select: the K best of N scores per query (FINN LabelSelect with the project's tie rule)
// with an optional "seen items" filter (SEEN_MODE: 0 none, 1 context ids, 2 history bitmap).
//
// Integer semantics: kernels/topk_select/golden.py (the specification, bit exact).
//   item a is better than item b  <=>  s_a > s_b, or s_a == s_b and a < b (lower index wins)
//   eligible(i)  <=>  i < N_VALID and not seen(i), where seen(i) is
//                     SEEN_MODE 0: never; 1: i is one of the query's K_CTX context ids (ids
//                     >= N_VALID, e.g. the null padding id, exclude nothing);
//                     2: bit i of the query's N-bit bitmap
//   out = the indices of the K best eligible items, best first; when a query has fewer than K
//   eligible items the remaining slots carry the value N (OUT_BITS must then hold N).
// Streams (AXI-Stream, lane 0 in the least significant bits):
//   in0 (scores): per query N/PE beats; beat b lane j = s_{b*PE+j}, signed IN_BITS,
//                 at bits [j*IN_BITS +: IN_BITS]
//   in1:          SEEN_MODE 1: per query K_CTX beats of one unsigned ID_BITS id;
//                 SEEN_MODE 2: per query N/PE beats of PE bits, bit j of beat b = item b*PE+j
//                 is excluded; SEEN_MODE 0: ID_BITS wide, always ready, ignored.
//                 Independent of in0 timing (before, during or after the query's scores).
//   out0:         per query K beats, one unsigned OUT_BITS index each, best first
// EXCLUDE_SEEN (0/1) is an alias kept for older callers: SEEN_MODE defaults to it.
//
// Micro-architecture (L = LANES_PER_SORTER, S = PE/L sorters, NB = N/PE beats per query):
//   - stage 0 (serialiser without a buffer): an in0 beat is read in place for L cycles; in
//     cycle l sorter t takes lane t*L+l straight from in0_TDATA (AXI-Stream keeps TDATA stable
//     while TVALID && !TREADY); in0_TREADY is raised in the beat's last lane cycle only. So one
//     beat every L cycles, S candidates per cycle, and no PE*IN_BITS beat register. The
//     candidate's eligibility is computed here from its index alone (index < N_VALID, seen bit).
//   - seen filter: a bitmap per query in distributed RAM (2 slots x NB words x PE bits), word
//     b = the seen bits of the items of beat b; two slots: query q+1's filter arrives while q
//     streams; the query's last beat frees its slot.
//     SEEN_MODE 1: in1 writes one id per cycle (read-modify-write of word id/PE, bit id%PE; ids
//     >= N_VALID write nothing) into the fill slot; word and bit come from a constant table
//     (no divider) and are registered, the read-modify-write is in the next cycle; a query's
//     scores start once its slot holds all K_CTX ids (one cycle after the last one). A
//     "touched" bit per word replaces clearing the RAM (an untouched word reads as 0). Cost:
//     one PE-bit RAM word read per cycle instead of S*K_CTX comparators.
//     SEEN_MODE 2: in1 beat w of a query is written as word w of the fill slot (one per cycle,
//     every word is written: no touched bits, no read-modify-write); beat b of the scores may
//     be read as soon as word b is in (a per-slot word counter > b), so the scores may run in
//     step with their bitmap.
//   - stage 1: S insertion sorters; each keeps a sorted list of K entries
//     {valid, score with the sign bit flipped, beat b, lane l} (best first). A candidate is
//     compared with all K entries (gt_k = entry k invalid or cand > entry k, a plain unsigned
//     compare) and inserted with a shift; equal scores keep the older (lower index) entry in
//     front, which is the tie rule inside a sorter (its candidates arrive in index order).
//     Ineligible candidates are not inserted. A query's first candidate sees an empty list
//     (no clear cycle).
//   - shadow bank: the candidate that completes a query writes the S final lists into a
//     shadow bank (same edge), so the sorters go on with the next query at once. A query's
//     last candidate waits in stage 0 while the shadow bank is still busy (only for tiny N).
//   - merge: a tree of D = max(2, clog2(S)) levels of registered nodes over the S shadow list
//     heads (each list read at a head pointer; records {valid, score', b, t, l}). A node holds
//     one record; when it is empty and both children hold one it takes the better child
//     ({valid, score', ~b} larger; equal: the left child, i.e. the lower sorter number, so the
//     order is score, then index = b*PE + t*L + l), and that child refills in the next cycle:
//     one compare-and-select per cycle and level, a record leaves the root every 2 cycles. The
//     root fires K times per query; an out stage turns its record into the index (an invalid
//     one, every list exhausted, into N) in the out0 register. out0 back-pressure holds the
//     root. A load (the shadow bank written) empties the nodes below the root and resets the
//     head pointers (the nodes fetch ahead; what they hold then is not needed).
//   Cycles: per query max(NB*L, 2K+D, K_CTX (SEEN_MODE 1), NB (SEEN_MODE 2)); latency from the
//   accepted last in0 beat (cycle c) to the last out0 beat: 2K+D+1 (out beat j, j = 1..K, is
//   valid at c+D+1+2j). Timing: at most one compare (one carry chain) and about 6 LUT levels
//   between registers (Yosys synth_xilinx xc7: 6 LUT levels + one 2-cell carry chain for the
//   PE=48 demo, all three SEEN_MODEs).
//   No TREADY depends combinationally on a TVALID or on out0_TREADY.
module topk_select #(
  parameter int N = 1792, N_VALID = 1682, PE = 64, IN_BITS = 14, K = 10, OUT_BITS = 16,
  parameter int EXCLUDE_SEEN = 1, SEEN_MODE = EXCLUDE_SEEN, K_CTX = 20, ID_BITS = 11,
  parameter int LANES_PER_SORTER = 4
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [PE*IN_BITS-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  input  logic [((SEEN_MODE == 2) ? PE : ID_BITS)-1:0] in1_V_TDATA, input logic in1_V_TVALID, output logic in1_V_TREADY,
  output logic [OUT_BITS-1:0]   out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY
);
  // ---------------------------------------------------------------- derived sizes
  localparam int L = LANES_PER_SORTER;
  localparam int S = PE / L;                          // sorters
  localparam int NB = N / PE;                         // beats per query
  localparam int BW = (NB > 1) ? $clog2(NB) : 1;      // beat number
  localparam int LW = (L > 1) ? $clog2(L) : 1;        // lane within a sorter
  localparam int TW = (S > 1) ? $clog2(S) : 1;        // sorter number
  localparam int EW = 1 + IN_BITS + BW + LW;          // list entry {v, key, b, l}
  localparam int RW = 1 + IN_BITS + BW + TW + LW;     // merge record {v, key, b, t, l}
  localparam int LOG2S = $clog2(S);
  localparam int D = (LOG2S < 2) ? 2 : LOG2S;         // merge tree levels (at least 2)
  localparam int S2 = 1 << D;                         // tree leaves (padded with 0)
  localparam int HPW = $clog2(K + D);                 // head pointer 0..K+D-1
  localparam int CW = $clog2(K + 1);                  // root fire counter
  localparam int HN = 1 << HPW;                       // head mux leaves (>= K, padded with 0)
  localparam int FB = N_VALID / PE;                   // beats whose items are all valid
  localparam int REM = N_VALID % PE;                  // valid lanes of beat FB
  // a query may have fewer than K eligible items (its last slots then carry the value N)
  localparam bit SHORT = (SEEN_MODE == 2) || (N_VALID - ((SEEN_MODE == 1) ? K_CTX : 0) < K);

  // ---------------------------------------------------------------- parameter checks
  if (N % PE != 0) begin : g_err_pe
    $error("topk_select: PE must divide N");
  end
  if (PE % L != 0) begin : g_err_l
    $error("topk_select: LANES_PER_SORTER must divide PE");
  end
  if (N_VALID < 1 || N_VALID > N) begin : g_err_nv
    $error("topk_select: N_VALID must be 1..N");
  end
  if (K < 1 || K > N) begin : g_err_k
    $error("topk_select: need 1 <= K <= N");
  end
  if ((64'(1) << OUT_BITS) < 64'(N) + (SHORT ? 64'(1) : 64'(0))) begin : g_err_out
    $error("topk_select: OUT_BITS cannot hold 0..N-1 (0..N when fewer than K may be eligible)");
  end
  if (IN_BITS < 2 || K_CTX < 1 || ID_BITS < 1 || ID_BITS > 32) begin : g_err_bits
    $error("topk_select: need IN_BITS >= 2, K_CTX >= 1, 1 <= ID_BITS <= 32");
  end
  if (EXCLUDE_SEEN != 0 && EXCLUDE_SEEN != 1) begin : g_err_seen
    $error("topk_select: EXCLUDE_SEEN must be 0 or 1");
  end
  if (SEEN_MODE < 0 || SEEN_MODE > 2) begin : g_err_mode
    $error("topk_select: SEEN_MODE must be 0, 1 or 2");
  end

  // ---------------------------------------------------------------- stage 0: beat / lane
  logic [BW-1:0] b;
  logic [LW-1:0] l;
  logic last_l, last_b, last_cand, ids_ok, sh_free, s0_ok, adv;
  logic busy, load;                                   // shadow bank in use; loaded this edge
  logic [PE-1:0] seen_word;                           // seen bits of beat b (0: none)
  logic c_v, c_first, c_last;
  logic [BW-1:0] c_b;
  logic [LW-1:0] c_l;

  // last_l / last_b are registered flags (l == L-1, b == NB-1), kept with the counters
  assign last_cand = last_l && last_b;
  // the shadow bank must be free (and not just being loaded) for a query's last candidate
  assign sh_free = !busy && !(c_v && c_last);
  assign s0_ok = ids_ok && (!last_cand || sh_free);
  assign in0_V_TREADY = s0_ok && last_l;
  assign adv = in0_V_TVALID && s0_ok;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      b <= '0;
      l <= '0;
      last_l <= (L == 1);
      last_b <= (NB == 1);
      c_v <= 1'b0;
    end else begin
      c_v <= adv;
      if (adv) begin
        l <= last_l ? '0 : l + 1'b1;
        last_l <= last_l ? (L == 1) : (l == LW'(L - 2));
        if (last_l) begin
          b <= last_b ? '0 : b + 1'b1;
          last_b <= last_b ? (NB == 1) : (b == BW'(NB - 2));
        end
      end
    end
    if (adv) begin
      c_first <= (b == '0) && (l == '0);
      c_last <= last_cand;
      c_b <= b;
      c_l <= l;
    end
  end

  // ---------------------------------------------------------------- seen bitmap (in1)
  if (SEEN_MODE == 1) begin : g_seen
    localparam int CXW = $clog2(K_CTX + 1);
    localparam int PW = (PE > 1) ? $clog2(PE) : 1;
    // id -> (word, bit) = (id / PE, id % PE) without a divider: PE = QD * 2^PB (QD odd), so
    // word = m / QD and bit = {m % QD, id[PB-1:0]} with m = id >> PB < NB * QD for ids < N;
    // m / QD and m % QD come from a constant table (plain LUT logic, no carry chains)
    localparam int PB = $clog2(PE & -PE);
    localparam int QD = PE >> PB;
    localparam int QW = (QD > 1) ? $clog2(QD) : 1;
    localparam int MB = (NB * QD > 1) ? $clog2(NB * QD) : 1;
    localparam int DW = BW + QW;
    logic wsl, rsl;                                   // fill slot, read (score) slot
    logic [1:0] full, tch_wr, tch_rd, cnt_last;
    logic id_push, rel;
    // an accepted id's word / bit are registered (P2); its read-modify-write is in the next
    // cycle, the slot is full (readable by the scores) one cycle after its last id
    logic p2_v, p2_real, p2_last, p2_sl;
    logic [MB-1:0] m;
    logic [BW-1:0] hi, p2_hi;
    logic [QW-1:0] rq;
    logic [PW-1:0] lo, p2_lo;
    logic [PE-1:0] bm [0:(2 << BW) - 1];              // {slot, word} -> PE seen bits
    logic [PE-1:0] wr_old, rd_word;
    logic [BW:0] wa;                                  // RMW address {slot, word}

    assign in1_V_TREADY = !full[wsl];
    assign id_push = in1_V_TVALID && in1_V_TREADY;
    assign m = MB'(64'(in1_V_TDATA) >> PB);
    if (QD == 1) begin : g_pow2
      assign hi = BW'(m);
      assign rq = '0;
    end else if (NB * QD <= 4096) begin : g_tab
      logic [(1 << MB)*DW-1:0] dtab;
      for (genvar e = 0; e < (1 << MB); e++) begin : g_e
        localparam logic [BW-1:0] DH = BW'(e / QD);
        localparam logic [QW-1:0] DR = QW'(e % QD);
        assign dtab[e*DW +: DW] = {DH, DR};
      end
      assign {hi, rq} = dtab[m*DW +: DW];
    end else begin : g_div                            // (a large table: a plain divider)
      assign hi = BW'(m / MB'(QD));
      assign rq = QW'(m % MB'(QD));
    end
    if (PB == 0) begin : g_lo_odd
      assign lo = PW'(rq);
    end else begin : g_lo
      assign lo = PW'({rq, in1_V_TDATA[PB-1:0]});
    end
    assign ids_ok = full[rsl];
    assign rel = adv && last_cand;                   // the query's last candidate frees its slot
    // the RMW address, gated with p2_v: not a plain register, so Yosys keeps one shared read /
    // write address (a register there moves into the read port and costs a second RAM copy)
    assign wa = p2_v ? {p2_sl, p2_hi} : '0;
    assign wr_old = tch_wr[p2_sl] ? bm[wa] : '0;
    assign rd_word = bm[{rsl, b}];
    assign seen_word = tch_rd[rsl] ? rd_word : '0;

    always_ff @(posedge ap_clk) begin
      if (p2_v && p2_real) bm[wa] <= wr_old | (PE'(1) << p2_lo);
    end

    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) begin
        wsl <= 1'b0;
        rsl <= 1'b0;
        p2_v <= 1'b0;
      end else begin
        if (rel) rsl <= !rsl;
        if (id_push && cnt_last[wsl]) wsl <= !wsl;   // the fill slot has all its ids
        p2_v <= id_push;
      end
      p2_real <= 64'(in1_V_TDATA) < 64'(N_VALID);
      p2_last <= cnt_last[wsl];
      p2_sl <= wsl;
      p2_hi <= hi;
      p2_lo <= lo;
    end

    for (genvar s = 0; s < 2; s++) begin : g_slot
      logic [CXW-1:0] cnt;
      logic [NB-1:0] touched;                         // word written since the slot was freed
      logic f, rel_s;
      assign rel_s = rel && (rsl == 1'(s));
      assign cnt_last[s] = (cnt == CXW'(K_CTX - 1));
      assign full[s] = f;
      assign tch_wr[s] = touched[p2_hi];
      assign tch_rd[s] = touched[b];
      always_ff @(posedge ap_clk) begin
        if (!ap_rst_n || rel_s) begin
          cnt <= '0;
          f <= 1'b0;
          touched <= '0;
        end else begin
          if (id_push && wsl == 1'(s)) cnt <= cnt + 1'b1;
          if (p2_v && p2_sl == 1'(s)) begin           // the id's bit is in the RAM now
            if (p2_last) f <= 1'b1;
            if (p2_real) touched[p2_hi] <= 1'b1;
          end
        end
      end
    end
  end else if (SEEN_MODE == 2) begin : g_bitmap
    localparam logic [BW:0] CNT_LAST = (BW + 1)'(NB - 1);
    logic wsl, rsl;                                   // fill slot, read (score) slot
    logic [1:0] full;
    logic [BW:0] cnt [2];                             // words written into each slot, 0..NB
    logic push, rel;
    logic [PE-1:0] bm [0:(2 << BW) - 1];              // {slot, word} -> PE seen bits

    assign in1_V_TREADY = !full[wsl];
    assign push = in1_V_TVALID && in1_V_TREADY;
    assign rel = adv && last_cand;                   // the query's last candidate frees its slot
    assign ids_ok = cnt[rsl] > {1'b0, b};            // word b of the query's bitmap is in
    assign seen_word = bm[{rsl, b}];

    always_ff @(posedge ap_clk) begin
      if (push) bm[{wsl, cnt[wsl][BW-1:0]}] <= in1_V_TDATA;
    end

    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) begin
        wsl <= 1'b0;
        rsl <= 1'b0;
      end else begin
        if (rel) rsl <= !rsl;
        if (push && cnt[wsl] == CNT_LAST) wsl <= !wsl;  // the fill slot is now full
      end
    end

    for (genvar s = 0; s < 2; s++) begin : g_slot
      logic [BW:0] c;
      logic f;
      assign cnt[s] = c;
      assign full[s] = f;
      always_ff @(posedge ap_clk) begin
        if (!ap_rst_n || (rel && rsl == 1'(s))) begin
          c <= '0;
          f <= 1'b0;
        end else if (push && wsl == 1'(s)) begin
          c <= c + 1'b1;
          if (c == CNT_LAST) f <= 1'b1;
        end
      end
    end
  end else begin : g_no_seen
    assign in1_V_TREADY = 1'b1;                       // ids are accepted and ignored
    assign ids_ok = 1'b1;
    assign seen_word = '0;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [ID_BITS:0] unused_in1;
    assign unused_in1 = {in1_V_TVALID, in1_V_TDATA};
    /* verilator lint_on UNUSEDSIGNAL */
  end

  // ---------------------------------------------------------------- stage 1: sorters
  // merge tree in heap order: node i (1..S2-1) has the children 2i and 2i+1; leaf S2+t is the
  // head of sorter t's shadow list (S2 > S: padding leaves, always 0). Record {v, key, b, t, l}.
  /* verilator lint_off UNUSEDSIGNAL */
  logic [2*S2*RW-1:0] recs;                           // (heap index 0 and a few bits unused)
  logic [2*S2-1:0] fulls;                             // record present (leaves: always)
  logic [2*S2-1:0] pops;                              // taken by the parent this cycle
  /* verilator lint_on UNUSEDSIGNAL */

  assign load = c_v && c_last;

  for (genvar t = 0; t < S; t++) begin : g_sorter
    logic [IN_BITS-1:0] x;
    logic el, c_el;
    logic [IN_BITS-1:0] c_key;
    logic [K*EW-1:0] lst, nxt;
    logic [K-1:0] vld, gt;
    logic [EW-2:0] cand;
    logic [K*EW-1:0] sh;                              // shadow list
    logic [HPW-1:0] head;

    // stage 0: lane t*L+l of the beat, eligibility from the index
    // (lane l of the sorter's L lanes as an AND-OR mux: a part-select at a variable offset
    // l*IN_BITS keeps a multiplier in Yosys' netlist when the parameters come from an instance)
    logic [L*IN_BITS-1:0] x_sel;
    logic [L-1:0] seen_sel;
    for (genvar j = 0; j < L; j++) begin : g_lane
      assign x_sel[j*IN_BITS +: IN_BITS] = (int'(l) == j) ? in0_V_TDATA[(t * L + j) * IN_BITS +: IN_BITS] : '0;
      assign seen_sel[j] = (int'(l) == j) && seen_word[t * L + j];
    end
    always_comb begin
      x = '0;
      for (int j = 0; j < L; j++) x = x | x_sel[j*IN_BITS +: IN_BITS];
    end
    // index b*PE + t*L + l < N_VALID without a multiplier: beats below FB are all valid, beat
    // FB has its first REM lanes valid (constant compares of the beat and lane counters)
    assign el = ((int'(b) < FB) || ((int'(b) == FB) && (int'(l) < REM - t * L))) && !(|seen_sel);
    always_ff @(posedge ap_clk) begin
      if (adv) begin
        c_key <= {~x[IN_BITS-1], x[IN_BITS-2:0]};
        c_el <= el;
      end
    end

    // stage 1: K compares and a shift
    assign cand = {c_key, c_b, c_l};
    for (genvar k = 0; k < K; k++) begin : g_entry
      logic [EW-1:0] e;
      assign e = lst[k*EW +: EW];
      assign vld[k] = e[EW-1] && !c_first;
      assign gt[k] = !vld[k] || (c_key > e[EW-2 -: IN_BITS]);
      // what entry k would receive by a shift: the candidate (k = 0 or it goes here) or k-1
      logic [EW-1:0] shifted;
      if (k == 0) begin : g_head
        assign shifted = {1'b1, cand};
      end else begin : g_body
        assign shifted = gt[k-1] ? {vld[k-1], lst[(k-1)*EW +: EW-1]} : {1'b1, cand};
      end
      assign nxt[k*EW +: EW] = (c_el && gt[k]) ? shifted : {vld[k], e[EW-2:0]};
    end

    always_ff @(posedge ap_clk) begin
      if (c_v) lst <= nxt;
      if (load) sh <= nxt;
      if (load) head <= '0;
      else if (pops[S2 + t]) head <= head + 1'b1;
    end

    // merge leaf: the shadow list's head entry as {v, key, b, t, l} (0 past the list's end)
    // (a binary mux tree over the head bits, MSB at the root: a LUT6 + MUXF7/F8 per bit
    // for 16 leaves; entries >= K read 0. heap: node n at [n*EW +: EW], leaves HN + e)
    /* verilator lint_off UNOPTFLAT */
    /* verilator lint_off UNUSEDSIGNAL */
    logic [2*HN*EW-1:0] htree;                        // (node 0 unused)
    /* verilator lint_on UNUSEDSIGNAL */
    /* verilator lint_on UNOPTFLAT */
    logic [EW-1:0] hd;
    assign htree[EW-1:0] = '0;
    for (genvar e = 0; e < HN; e++) begin : g_hleaf
      if (e < K) begin : g_entry
        assign htree[(HN + e)*EW +: EW] = sh[e*EW +: EW];
      end else begin : g_pad
        assign htree[(HN + e)*EW +: EW] = '0;
      end
    end
    for (genvar n = 1; n < HN; n++) begin : g_hnode
      localparam int DEP = $clog2(n + 1) - 1;         // depth of node n (root 0)
      assign htree[n*EW +: EW] = head[HPW - 1 - DEP] ? htree[(2*n + 1)*EW +: EW] : htree[(2*n)*EW +: EW];
    end
    assign hd = htree[EW +: EW];
    localparam logic [TW-1:0] TID = TW'(t);          // (Yosys 0.70 misreads casts in a {})
    assign recs[(S2 + t)*RW +: RW] = {hd[EW-1:LW], TID, hd[LW-1:0]};
    assign fulls[S2 + t] = 1'b1;
  end
  if (S2 > S) begin : g_pad
    assign recs[2*S2*RW-1:(S2 + S)*RW] = '0;
    assign fulls[2*S2-1:S2 + S] = '1;
  end
  assign recs[RW-1:0] = '0;                           // heap index 0: unused
  assign fulls[0] = 1'b0;
  assign pops[0] = 1'b0;

  // ---------------------------------------------------------------- merge (a pop every 2 cycles)
  // Each node holds one record. A node fires when it is empty and both children hold one: the
  // better child (compare {v, key, ~b}; equal: the left child, the lower sorter number) moves
  // up, and the popped child refills in the next cycle, so every node (and the root) fires
  // every 2 cycles: one compare-and-select per cycle. A load empties all nodes but the root
  // and resets the head pointers; the root fires K times per query, the out stage empties it.
  logic fire_root, pipe_en;
  logic [CW-1:0] m_cnt;
  logic [RW-1:0] root;
  logic [BW-1:0] win_b;
  logic [TW-1:0] win_t;
  logic [LW-1:0] win_l;

  for (genvar i = 1; i < S2; i++) begin : g_node
    logic [RW-1:0] ra, rb, r;
    logic f, fire, selb;
    assign ra = recs[(2*i)*RW +: RW];
    assign rb = recs[(2*i+1)*RW +: RW];
    assign selb = {rb[RW-1 -: 1 + IN_BITS], ~rb[TW + LW +: BW]}
                > {ra[RW-1 -: 1 + IN_BITS], ~ra[TW + LW +: BW]};
    assign fire = busy && !f && fulls[2*i] && fulls[2*i+1];
    assign pops[2*i] = fire && !selb;
    assign pops[2*i+1] = fire && selb;
    assign recs[i*RW +: RW] = r;
    assign fulls[i] = f;
    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n || (i != 1 && load)) f <= 1'b0;
      else if (fire) f <= 1'b1;
      else if (pops[i]) f <= 1'b0;
      if (fire) r <= selb ? rb : ra;
    end
    if (i == 1) begin : g_root
      assign fire_root = fire;
    end
  end

  // the winner's index b*PE + t*L + l: two constant functions of (b) and (t, l), then one
  // adder (no multiplier: PE need not be a power of two)
  logic [OUT_BITS-1:0] beat_base, lane_off;
  always_comb begin
    beat_base = '0;
    for (int i = 0; i < NB; i++) if (int'(win_b) == i) beat_base = OUT_BITS'(i * PE);
    lane_off = '0;
    for (int i = 0; i < S; i++)
      for (int j = 0; j < L; j++)
        if (int'(win_t) == i && int'(win_l) == j) lane_off = OUT_BITS'(i * L + j);
  end
  assign root = recs[RW +: RW];
  assign win_l = root[LW-1:0];
  assign win_t = root[LW +: TW];
  assign win_b = root[TW + LW +: BW];
  assign pipe_en = !out0_V_TVALID || out0_V_TREADY;
  assign pops[1] = fulls[1] && pipe_en;              // the out stage takes the root's record

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      busy <= 1'b0;
      out0_V_TVALID <= 1'b0;
    end else begin
      if (load) busy <= 1'b1;
      else if (fire_root && m_cnt == CW'(K - 1)) busy <= 1'b0;
      if (pipe_en) out0_V_TVALID <= fulls[1];
    end
    if (load) m_cnt <= '0;
    else if (fire_root) m_cnt <= m_cnt + 1'b1;
    // an invalid winner: every list is exhausted (fewer than K eligible items) -> N
    if (pops[1]) out0_V_TDATA <= root[RW-1] ? beat_base + lane_off : OUT_BITS'(N);
  end

endmodule
