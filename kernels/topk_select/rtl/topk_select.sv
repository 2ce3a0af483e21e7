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
//     >= N_VALID write nothing) into the fill slot; a query's scores start when its slot holds
//     all K_CTX ids. A "touched" bit per word replaces clearing the RAM (an untouched word
//     reads as 0). Cost: one PE-bit RAM word read per cycle instead of S*K_CTX comparators.
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
//   - merge: K pops of 2 cycles; each sorter's shadow list is read at a head pointer; merge
//     key {valid, score', ~b, ~t, ~l} (unique, larger = better: ~(b,t,l) is lower index first
//     since index = b*PE + t*L + l); a max tree over the S heads, levels split over the 2
//     cycles by a pipeline register; the winner goes to the out0 register and its sorter's head
//     pointer moves on; an invalid winner (every list exhausted) is sent as N. out0
//     back-pressure holds the second cycle.
//   Cycles: per query max(NB*L, 2K+2, K_CTX (SEEN_MODE 1), NB (SEEN_MODE 2)); latency from the
//   accepted last in0 beat (cycle c) to the last out0 beat: 2K+2 (out beat j, j = 1..K, is
//   valid at c+2+2j).
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
  localparam int MW = 1 + IN_BITS + BW + TW + LW;     // merge key {v, key, ~b, ~t, ~l}
  localparam int HPW = $clog2(K + 1);                 // head pointer 0..K
  localparam int HN = 1 << HPW;                       // head mux inputs (> K, padded with 0)
  localparam int CW = $clog2(K + 1);                  // pop counter
  localparam int LOG2S = $clog2(S);
  localparam int S2 = 1 << LOG2S;                     // tree leaves (padded with 0)
  localparam int LA = (LOG2S + 1) / 2;                // tree levels in merge cycle A
  localparam int LB = LOG2S - LA;                     // ... and in cycle B
  localparam int GA = 1 << LB;                        // nodes between the two cycles
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
  logic last_l, last_b, last_cand, ids_ok, sh_busy, sh_free, s0_ok, adv;
  logic [PE-1:0] seen_word;                           // seen bits of beat b (0: none)
  logic c_v, c_first, c_last;
  logic [BW-1:0] c_b;
  logic [LW-1:0] c_l;

  assign last_l = (l == LW'(L - 1));
  assign last_b = (b == BW'(NB - 1));
  assign last_cand = last_l && last_b;
  // the shadow bank must be free (and not just being loaded) for a query's last candidate
  assign sh_free = !sh_busy && !(c_v && c_last);
  assign s0_ok = ids_ok && (!last_cand || sh_free);
  assign in0_V_TREADY = s0_ok && last_l;
  assign adv = in0_V_TVALID && s0_ok;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      b <= '0;
      l <= '0;
      c_v <= 1'b0;
    end else begin
      c_v <= adv;
      if (adv) begin
        l <= last_l ? '0 : l + 1'b1;
        if (last_l) b <= last_b ? '0 : b + 1'b1;
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
    logic wsl, rsl;                                   // fill slot, read (score) slot
    logic [1:0] full, tch_wr, tch_rd, cnt_last;
    logic id_push, id_real, rel;
    logic [BW-1:0] hi;
    logic [PW-1:0] lo;
    logic [PE-1:0] bm [0:(2 << BW) - 1];              // {slot, word} -> PE seen bits
    logic [PE-1:0] wr_old, rd_word;

    assign in1_V_TREADY = !full[wsl];
    assign id_push = in1_V_TVALID && in1_V_TREADY;
    assign id_real = 64'(in1_V_TDATA) < 64'(N_VALID);
    assign hi = BW'(64'(in1_V_TDATA) / 64'(PE));
    assign lo = PW'(64'(in1_V_TDATA) % 64'(PE));
    assign ids_ok = full[rsl];
    assign rel = adv && last_cand;                   // the query's last candidate frees its slot
    assign wr_old = tch_wr[wsl] ? bm[{wsl, hi}] : '0;
    assign rd_word = bm[{rsl, b}];
    assign seen_word = tch_rd[rsl] ? rd_word : '0;

    always_ff @(posedge ap_clk) begin
      if (id_push && id_real) bm[{wsl, hi}] <= wr_old | (PE'(1) << lo);
    end

    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) begin
        wsl <= 1'b0;
        rsl <= 1'b0;
      end else begin
        if (rel) rsl <= !rsl;
        if (id_push && cnt_last[wsl]) wsl <= !wsl;   // the fill slot is now full
      end
    end

    for (genvar s = 0; s < 2; s++) begin : g_slot
      logic [CXW-1:0] cnt;
      logic [NB-1:0] touched;                         // word written since the slot was freed
      logic f, push_s, rel_s;
      assign push_s = id_push && (wsl == 1'(s));
      assign rel_s = rel && (rsl == 1'(s));
      assign cnt_last[s] = (cnt == CXW'(K_CTX - 1));
      assign full[s] = f;
      assign tch_wr[s] = touched[hi];
      assign tch_rd[s] = touched[b];
      always_ff @(posedge ap_clk) begin
        if (!ap_rst_n || rel_s) begin
          cnt <= '0;
          f <= 1'b0;
          touched <= '0;
        end else if (push_s) begin
          cnt <= cnt + 1'b1;
          if (cnt_last[s]) f <= 1'b1;
          if (id_real) touched[hi] <= 1'b1;
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
  logic [S2*MW-1:0] leaves;                           // merge tree inputs
  logic pop;                                          // merge: a winner leaves this cycle
  logic [TW-1:0] win_t;                               // ... from sorter win_t

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
    assign x = in0_V_TDATA[(t * L + int'(l)) * IN_BITS +: IN_BITS];
    assign el = ((int'(b) * PE + t * L + int'(l)) < N_VALID) && !seen_word[t * L + int'(l)];
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
      if (c_v && c_last) sh <= nxt;
      if (c_v && c_last) head <= '0;
      else if (pop && win_t == TID) head <= head + 1'b1;
    end

    // merge leaf: the shadow list's head entry as {v, key, ~b, ~t, ~l}
    logic [HN*EW-1:0] shx;
    logic [EW-1:0] hd;
    assign shx = {{((HN - K) * EW){1'b0}}, sh};
    assign hd = shx[head*EW +: EW];
    localparam logic [TW-1:0] TID = TW'(t);          // (Yosys 0.70 misreads ~TW'(t) in a {})
    assign leaves[t*MW +: MW] = {hd[EW-1 -: 1 + IN_BITS], ~hd[LW +: BW], ~TID, ~hd[LW-1:0]};
  end
  if (S2 > S) begin : g_pad
    assign leaves[S2*MW-1:S*MW] = '0;
  end

  // ---------------------------------------------------------------- merge (2 cycles a pop)
  logic ph, pipe_en;
  logic [CW-1:0] m_cnt;
  logic [GA*MW-1:0] ga_q;
  /* verilator lint_off UNUSEDSIGNAL */
  logic [S2*MW-1:0] ta;                               // in-place tree, cycle A
  logic [GA*MW-1:0] tb;                               // in-place tree, cycle B
  logic [MW-1:0] win;                                 // valid bit 0: no item left
  /* verilator lint_on UNUSEDSIGNAL */
  logic [BW-1:0] win_b;
  logic [LW-1:0] win_l;

  always_comb begin
    ta = leaves;
    for (int lv = 0; lv < LA; lv++) begin
      for (int i = 0; i < S2 / 2; i++) begin
        if (i < (S2 >> (lv + 1))) begin
          if (ta[(2*i+1)*MW +: MW] > ta[(2*i)*MW +: MW]) ta[i*MW +: MW] = ta[(2*i+1)*MW +: MW];
          else ta[i*MW +: MW] = ta[(2*i)*MW +: MW];
        end
      end
    end
  end

  always_comb begin
    tb = ga_q;
    for (int lv = 0; lv < LB; lv++) begin
      for (int i = 0; i < GA / 2; i++) begin
        if (i < (GA >> (lv + 1))) begin
          if (tb[(2*i+1)*MW +: MW] > tb[(2*i)*MW +: MW]) tb[i*MW +: MW] = tb[(2*i+1)*MW +: MW];
          else tb[i*MW +: MW] = tb[(2*i)*MW +: MW];
        end
      end
    end
  end

  assign win = tb[MW-1:0];
  assign win_l = ~win[LW-1:0];
  assign win_t = ~win[LW +: TW];
  assign win_b = ~win[LW + TW +: BW];
  assign pipe_en = !out0_V_TVALID || out0_V_TREADY;
  assign pop = sh_busy && ph && pipe_en;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      sh_busy <= 1'b0;
      ph <= 1'b0;
      out0_V_TVALID <= 1'b0;
    end else begin
      if (c_v && c_last) begin
        sh_busy <= 1'b1;
        ph <= 1'b0;
      end else if (sh_busy) begin
        if (!ph) ph <= 1'b1;
        else if (pipe_en) begin
          ph <= 1'b0;
          if (m_cnt == CW'(K - 1)) sh_busy <= 1'b0;
        end
      end
      if (pipe_en) out0_V_TVALID <= pop;
    end
    if (c_v && c_last) m_cnt <= '0;
    else if (pop) m_cnt <= m_cnt + 1'b1;
    if (sh_busy && !ph) ga_q <= ta[GA*MW-1:0];
    // an invalid winner: every list is exhausted (fewer than K eligible items) -> N
    if (pop) out0_V_TDATA <= win[MW-1] ? OUT_BITS'(int'(win_b) * PE + int'(win_t) * L + int'(win_l))
                                       : OUT_BITS'(N);
  end

endmodule
