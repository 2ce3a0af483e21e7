// attention_aggregate: behaviour-aware attention pooling over the K context items of a query.
//
// Integer semantics: kernels/attention_aggregate/golden.py (the specification, bit exact).
//   l_j = q . x_j + b_type[t_j] + b_pos[r_j];  m = max over real slots;  d_j = m - l_j
//   y_j = (d_j * M) >> S;  e_j = EXP[y_j mod 2^FB] >> min(y_j >> FB, E+1)  (0 for padding)
//   rz = floor(2^(E+W+G) / sum e);  a_j = (e_j * rz + 2^(E+G-1)) >> (E+G)
//   u_d = clamp((sum_j a_j x_jd + 2^(W-F-1)) >>> (W-F))
//   in0 (items): per query K*D/PE beats, slot-major, lane j at bits [j*IN_BITS +: IN_BITS]
//   in1 (meta):  per query K beats {bucket, type, id} (id in the LSBs, then TB type bits, then RB
//                bucket bits); id == NULL_ID is padding
//   out0 (u):    per query D/PE beats, lane j at bits [j*OUT_BITS +: OUT_BITS]
//   out1 (a):    per query K beats of W+1 bits (EMIT_WEIGHTS = 1; otherwise never valid)
//
// Micro-architecture:
//   input side (one in0 beat per cycle): the beat is written into the item buffer (two banks of
//     K*D/PE words, block RAM or LUTRAM) and registered; the next cycle forms its PE products
//     q_d * x_d and their sum (balanced adder tree, registered); the cycle after adds it to the
//     slot's dot product; the slot's last beat writes l_j (+ real bit) into the logit bank and
//     updates the running max. A bank is full from the acceptance of its query's last beat until
//     the back end has released it; in0 waits only for a full bank (two queries ahead).
//   back end (fixed schedule once started): EXP (K+2 cycles: d_j, d_j*M, table and shift, sum Z),
//     DIV (W+G+1 cycles, restoring divider for rz), WAIT (>= 1 cycle, until both output FIFOs are
//     empty), WSUM (K*D/PE+2 cycles: a_j = (e_j*rz + rnd) >> (E+G) and PE products a_j * x_jd into
//     D/PE accumulator words; the last slot's beats go rounded and clamped into the out0 FIFO, a_j
//     into the out1 FIFO), DONE (1 cycle, releases the bank).
//   All TREADYs are functions of registers only (no combinational valid->ready paths).
module attention_aggregate #(
  parameter int K = 20, D = 64, PE = 32, IN_BITS = 4, IN_SIGNED = 1,
  parameter int T = 3, R = 8, Q_BITS = 8, BIAS_BITS = 8,
  parameter logic [D*Q_BITS-1:0] Q = '0,          // q_d at bits [d*Q_BITS +: Q_BITS], signed
  parameter logic [T*BIAS_BITS-1:0] B_TYPE = '0,  // b_type[t], signed
  parameter logic [R*BIAS_BITS-1:0] B_POS = '0,   // b_pos[r], signed
  parameter int M_MULT = 1024, S_SHIFT = 10,
  parameter int FB = 4, E = 15,
  parameter logic [(2**FB)*(E+1)-1:0] EXP_TABLE = '0,  // golden exp_table(p)
  parameter int W = 10, G = 4, FRAC_BITS = 4, OUT_BITS = 8,
  parameter int ID_BITS = 11, NULL_ID = 0,
  parameter int EMIT_WEIGHTS = 0,
  // micro-architecture only (same results): 1 builds the 2*PE lane products (q_d * x_d, a_j * x_d)
  // by shift-and-add over the bits of x in LUTs instead of DSP48s (demo: +3,900 LUT, -64 DSP)
  parameter int LUT_MUL = 0
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [PE*IN_BITS-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  input  logic [ID_BITS+((T > 1) ? $clog2(T) : 1)+((R > 1) ? $clog2(R) : 1)-1:0] in1_V_TDATA,
  input  logic in1_V_TVALID, output logic in1_V_TREADY,
  output logic [PE*OUT_BITS-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY,
  output logic [W:0] out1_V_TDATA, output logic out1_V_TVALID, input logic out1_V_TREADY
);
  // ---------------------------------------------------------------- derived sizes (= golden)
  localparam int FOLD = D / PE;
  localparam int KF = K * FOLD;                          // beats per query
  localparam int XB = IN_BITS + ((IN_SIGNED != 0) ? 0 : 1);  // signed width of an input value
  localparam int LW0 = Q_BITS + XB - 2 + $clog2(D);
  localparam int LW = ((LW0 > BIAS_BITS) ? LW0 : BIAS_BITS) + 2;   // logit width (signed)
  localparam int MB = (M_MULT > 0) ? $clog2(M_MULT + 1) : 1;
  localparam int PW = LW + MB;                           // d * M (unsigned)
  localparam int TB = (T > 1) ? $clog2(T) : 1;
  localparam int RB = (R > 1) ? $clog2(R) : 1;
  localparam int EW = E + 1;                             // e_j <= 2^E
  localparam int ZW = E + 1 + $clog2(K + 1);             // Z < (K+1) 2^E
  localparam int QW = W + G + 1;                         // rz <= 2^(W+G)
  localparam int AW = W + 1;                             // a_j <= 2^W
  localparam int UW = XB + W + $clog2(K) + 2;            // sum_j a_j x_jd
  localparam int SHU = W - FRAC_BITS;
  localparam int PPW = Q_BITS + XB;                      // q_d * x_d
  localparam int KW = (K > 1) ? $clog2(K) : 1;
  localparam int FW = (FOLD > 1) ? $clog2(FOLD) : 1;
  localparam int XD = 2 * KF;                            // item buffer depth
  localparam int XAW = $clog2(XD);
  localparam int LD = 2 * K;                             // logit buffer depth
  localparam int LAW = $clog2(LD);
  localparam int HD = (FOLD > 2) ? FOLD : 2;             // out0 FIFO depth
  localparam int HPW = $clog2(HD);
  localparam int HCW = $clog2(HD + 1);
  localparam int WD = (K > 2) ? K : 2;                   // out1 FIFO depth
  localparam int WPW = $clog2(WD);
  localparam int WCW = $clog2(WD + 1);
  localparam int CW = $clog2(KF + K + QW + 8);           // back-end phase counter
  localparam int EIW = $clog2(E + 2) + 1;                // saturated exponent shift 0..E+1
  localparam int PE2 = 1 << $clog2(PE);                  // leaves of the lane adder tree

  // ---------------------------------------------------------------- parameter checks
  if (D % PE != 0) begin : g_err_fold
    $error("attention_aggregate: PE must divide D");
  end
  if (FRAC_BITS > W) begin : g_err_frac
    $error("attention_aggregate: FRAC_BITS must be <= W");
  end
  if (E + G < 1) begin : g_err_eg
    $error("attention_aggregate: E + G must be >= 1");
  end

  // ---------------------------------------------------------------- constant tables
  logic signed [BIAS_BITS-1:0] bt_tab [0:(1 << TB) - 1];
  logic signed [BIAS_BITS-1:0] bp_tab [0:(1 << RB) - 1];
  for (genvar i = 0; i < (1 << TB); i++) begin : g_bt
    if (i < T) begin : g_v
      assign bt_tab[i] = B_TYPE[i*BIAS_BITS +: BIAS_BITS];
    end else begin : g_z
      assign bt_tab[i] = '0;
    end
  end
  for (genvar i = 0; i < (1 << RB); i++) begin : g_bp
    if (i < R) begin : g_v
      assign bp_tab[i] = B_POS[i*BIAS_BITS +: BIAS_BITS];
    end else begin : g_z
      assign bp_tab[i] = '0;
    end
  end

  // ---------------------------------------------------------------- meta queue (2 entries)
  localparam int MQW = 1 + TB + RB;                      // {real, type, bucket}
  logic [1:0] mq_cnt;
  logic [MQW-1:0] mq0, mq1, mq_in;
  logic mq_push, mq_pop;
  logic [FW-1:0] f_in;
  logic [KW-1:0] k_in;
  logic in0_fire;

  assign mq_in = {in1_V_TDATA[ID_BITS-1:0] != ID_BITS'(NULL_ID), in1_V_TDATA[ID_BITS +: TB],
                  in1_V_TDATA[ID_BITS+TB +: RB]};
  assign in1_V_TREADY = (mq_cnt != 2'd2);
  assign mq_push = in1_V_TVALID && in1_V_TREADY;
  assign mq_pop = in0_fire && (f_in == '0);

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      mq_cnt <= 2'd0;
    end else begin
      mq_cnt <= mq_cnt + {1'b0, mq_push} - {1'b0, mq_pop};
    end
    if (mq_push && mq_pop) begin
      if (mq_cnt == 2'd1) begin
        mq0 <= mq_in;
      end else begin
        mq0 <= mq1;
        mq1 <= mq_in;
      end
    end else if (mq_push) begin
      if (mq_cnt == 2'd0) mq0 <= mq_in;
      else mq1 <= mq_in;
    end else if (mq_pop) begin
      mq0 <= mq1;
    end
  end

  // ---------------------------------------------------------------- input side
  logic wb;                       // bank being written
  logic [1:0] bank_full;          // the bank's last in0 beat was accepted, not yet released
  logic [1:0] bank_rdy;           // ... and its logits and max are written (the back end may start)
  logic [XAW-1:0] xa_in;          // item buffer write address (bank base + beat)
  logic [MQW-1:0] meta_r;         // the current slot's meta (after its first beat)

  assign in0_V_TREADY = !bank_full[wb] && (f_in != '0 || mq_cnt != 2'd0);
  assign in0_fire = in0_V_TVALID && in0_V_TREADY;

  // stage 1: the accepted beat, registered
  logic s1_v, s1_b, s1_first_k, s1_last_f, s1_last_k;
  logic [FW-1:0] s1_f;
  logic [KW-1:0] s1_k;
  logic [PE*IN_BITS-1:0] s1_x;
  logic [MQW-1:0] s1_meta;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      f_in <= '0;
      k_in <= '0;
      wb <= 1'b0;
      xa_in <= '0;
      s1_v <= 1'b0;
    end else begin
      s1_v <= in0_fire;
      if (in0_fire) begin
        xa_in <= (xa_in == XAW'(XD - 1)) ? '0 : xa_in + 1'b1;
        if (f_in == FW'(FOLD - 1)) begin
          f_in <= '0;
          if (k_in == KW'(K - 1)) begin
            k_in <= '0;
            wb <= !wb;
          end else begin
            k_in <= k_in + 1'b1;
          end
        end else begin
          f_in <= f_in + 1'b1;
        end
      end
    end
    if (in0_fire) begin
      s1_x <= in0_V_TDATA;
      s1_f <= f_in;
      s1_k <= k_in;
      s1_b <= wb;
      s1_first_k <= (k_in == '0);
      s1_last_f <= (f_in == FW'(FOLD - 1));
      s1_last_k <= (k_in == KW'(K - 1));
      s1_meta <= (f_in == '0) ? mq0 : meta_r;
      if (f_in == '0) meta_r <= mq0;
    end
  end

  // item buffer: written at acceptance, read (registered) by the back end
  logic [PE*IN_BITS-1:0] xmem [0:XD-1];
  logic [XAW-1:0] xa_rd;
  logic [PE*IN_BITS-1:0] x_rd;
  always_ff @(posedge ap_clk) begin
    if (in0_fire) xmem[xa_in] <= in0_V_TDATA;
    x_rd <= xmem[xa_rd];
  end

  // stage 2: the beat's PE lane products q_d * x_d and their sum
  logic signed [LW-1:0] partial, dot_r, dot_nx, logit;
  logic signed [LW-1:0] m_run, m_nx;
  logic any_run, any_nx, s1_real;
  logic [TB-1:0] s1_t;
  logic [RB-1:0] s1_r;
  assign {s1_real, s1_t, s1_r} = s1_meta;

  logic signed [LW-1:0] lane_prod [0:PE-1];
  for (genvar j = 0; j < PE; j++) begin : g_dot
    // q of lane j for each beat f of the slot (constant mux)
    logic signed [Q_BITS-1:0] qf [0:(1 << FW) - 1];
    for (genvar f = 0; f < (1 << FW); f++) begin : g_q
      if (f < FOLD) begin : g_v
        assign qf[f] = Q[(f*PE + j)*Q_BITS +: Q_BITS];
      end else begin : g_z
        assign qf[f] = '0;
      end
    end
    logic signed [XB-1:0] xv;
    logic signed [PPW-1:0] pp;
    if (IN_SIGNED != 0) begin : g_s
      assign xv = $signed(s1_x[j*IN_BITS +: IN_BITS]);
    end else begin : g_u
      assign xv = $signed({1'b0, s1_x[j*IN_BITS +: IN_BITS]});
    end
    logic signed [Q_BITS-1:0] qv;
    assign qv = qf[s1_f];
    if (LUT_MUL != 0) begin : g_lut
      // shift-and-add over the few bits of x (no DSP48 for a 4-bit operand)
      always_comb begin
        pp = '0;
        for (int b = 0; b < XB - 1; b++) if (xv[b]) pp = pp + (PPW'(qv) <<< b);
        if (xv[XB-1]) pp = pp - (PPW'(qv) <<< (XB - 1));
      end
    end else begin : g_dsp
      assign pp = qv * xv;
    end
    assign lane_prod[j] = LW'(pp);
  end

  // balanced adder tree over the lanes (heap order in one packed vector: node i = node 2i+1 +
  // node 2i+2, leaves PE2-1 .. 2*PE2-2), registered
  logic [(2*PE2-1)*LW-1:0] tree;
  always_comb begin
    tree = '0;
    for (int i = 0; i < PE; i++) tree[(PE2 - 1 + i)*LW +: LW] = lane_prod[i];
    for (int i = PE2 - 2; i >= 0; i--) begin
      tree[i*LW +: LW] = $signed(tree[(2*i + 1)*LW +: LW]) + $signed(tree[(2*i + 2)*LW +: LW]);
    end
  end

  // stage 3: the slot's dot product, logit, running max
  logic s2_v, s2_b, s2_first_k, s2_last_f, s2_last_k, s2_f0, s2_real;
  logic [KW-1:0] s2_k;
  logic [TB-1:0] s2_t;
  logic [RB-1:0] s2_r;
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) s2_v <= 1'b0;
    else s2_v <= s1_v;
    if (s1_v) begin
      partial <= $signed(tree[LW-1:0]);
      {s2_real, s2_t, s2_r} <= {s1_real, s1_t, s1_r};
      s2_b <= s1_b;
      s2_k <= s1_k;
      s2_f0 <= (s1_f == '0);
      s2_first_k <= s1_first_k;
      s2_last_f <= s1_last_f;
      s2_last_k <= s1_last_k;
    end
  end
  assign dot_nx = (s2_f0 ? LW'(0) : dot_r) + partial;
  assign logit = dot_nx + LW'(bt_tab[s2_t]) + LW'(bp_tab[s2_r]);
  assign any_nx = (s2_first_k ? 1'b0 : any_run) | s2_real;
  assign m_nx = (s2_real && (s2_first_k || !any_run || logit > m_run)) ? logit : m_run;

  logic [LW:0] lmem [0:LD-1];     // {real, l}
  logic signed [LW-1:0] m_bank [0:1];
  logic any_bank [0:1];
  logic [LAW-1:0] la_wr;
  assign la_wr = s2_b ? LAW'(K + 32'(s2_k)) : LAW'(s2_k);

  always_ff @(posedge ap_clk) begin
    if (s2_v) dot_r <= dot_nx;
    if (s2_v && s2_last_f) begin
      lmem[la_wr] <= {s2_real, logit};
      m_run <= m_nx;
      any_run <= any_nx;
      if (s2_last_k) begin
        m_bank[s2_b] <= m_nx;
        any_bank[s2_b] <= any_nx;
      end
    end
  end

  // ---------------------------------------------------------------- back end
  localparam logic [2:0] S_IDLE = 3'd0, S_EXP = 3'd1, S_DIV = 3'd2, S_WAIT = 3'd3, S_WSUM = 3'd4,
                         S_DONE = 3'd5;
  logic [2:0] st;
  logic rb;                       // bank being read
  logic [CW-1:0] cnt;
  logic signed [LW-1:0] m_cur;
  logic any_cur;
  logic [ZW-1:0] z;
  logic [ZW-1:0] rem;
  logic [QW-1:0] quo;
  logic [HCW-1:0] hold_cnt;
  logic [WCW-1:0] wq_cnt;
  logic bank_set, bank_clr;
  logic [ZW:0] r2;
  assign r2 = {rem, 1'b0};
  assign bank_set = s2_v && s2_last_f && s2_last_k;
  assign bank_clr = (st == S_DONE);
  logic bank_take;
  assign bank_take = in0_fire && (f_in == FW'(FOLD - 1)) && (k_in == KW'(K - 1));

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      bank_full <= 2'b00;
      bank_rdy <= 2'b00;
    end else begin
      for (int b = 0; b < 2; b++) begin
        if (bank_take && wb == 1'(b)) bank_full[b] <= 1'b1;
        else if (bank_clr && rb == 1'(b)) bank_full[b] <= 1'b0;
        if (bank_set && s2_b == 1'(b)) bank_rdy[b] <= 1'b1;
        else if (bank_clr && rb == 1'(b)) bank_rdy[b] <= 1'b0;
      end
    end
  end

  // EXP pipeline: issue (read l_j, d) -> e1 (d * M) -> e2 (table, shift, write e_j, Z += e_j)
  logic [LW:0] l_rd;
  logic [LAW-1:0] la_rd;
  logic [KW-1:0] j_issue;
  logic e1_v, e1_real, e2_v, e2_real;
  logic [KW-1:0] e1_j, e2_j;
  logic [LW-1:0] e1_d;            // d_j (unsigned)
  logic [PW-1:0] e2_p;            // d_j * M
  logic [PW-1:0] y;
  logic [EW-1:0] e_val;
  logic [EW-1:0] emem [0:K-1];
  logic signed [LW:0] dfull;

  assign j_issue = KW'(cnt);
  assign la_rd = rb ? LAW'(K + 32'(j_issue)) : LAW'(j_issue);
  assign l_rd = lmem[la_rd];
  assign dfull = $signed({m_cur[LW-1], m_cur}) - $signed({l_rd[LW-1], l_rd[LW-1:0]});
  assign y = e2_p >> S_SHIFT;

  localparam int FBW = (FB > 0) ? FB : 1;
  logic [PW-1:0] ie;
  logic [EIW-1:0] esh;
  logic [FBW-1:0] fidx;
  logic [EW-1:0] tv;
  assign ie = y >> FB;
  assign esh = (ie > PW'(E + 1)) ? EIW'(E + 1) : EIW'(ie);
  assign fidx = (FB > 0) ? y[FBW-1:0] : '0;
  assign tv = EXP_TABLE[32'(fidx)*EW +: EW];
  assign e_val = e2_real ? (tv >> esh) : '0;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      e1_v <= 1'b0;
      e2_v <= 1'b0;
    end else begin
      e1_v <= (st == S_EXP) && (cnt < CW'(K));
      e2_v <= e1_v;
    end
    e1_j <= j_issue;
    e1_real <= l_rd[LW];
    e1_d <= (l_rd[LW] && !dfull[LW]) ? dfull[LW-1:0] : '0;
    e2_j <= e1_j;
    e2_real <= e1_real;
    e2_p <= PW'(e1_d) * PW'(M_MULT);
    if (e2_v) emem[e2_j] <= e_val;
  end

  // WSUM pipeline: issue (read e_j, e_j * rz) -> w1 (a_j, read the items) -> w2 (PE products,
  // accumulate; the last slot rounds and clamps into the out0 FIFO)
  logic [KW-1:0] ws_j;
  logic [FW-1:0] ws_f;
  logic [XAW-1:0] ws_xa;
  logic [QW-1:0] rz;
  logic w1_v, w1_first, w1_last, w1_f0, w2_v, w2_first, w2_last, w2_f0;
  logic [FW-1:0] w1_f, w2_f;
  logic [EW+QW-1:0] w1_p;
  logic [AW-1:0] w2_a;
  localparam logic [EW+QW-1:0] RND_A = (EW+QW)'(1) << (E + G - 1);
  /* verilator lint_off UNUSEDSIGNAL */
  logic [EW+QW-1:0] a_full;       // only bits [E+G +: W+1] are a_j
  /* verilator lint_on UNUSEDSIGNAL */
  assign a_full = w1_p + RND_A;
  assign rz = any_cur ? quo : '0;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      w1_v <= 1'b0;
      w2_v <= 1'b0;
    end else begin
      w1_v <= (st == S_WSUM) && (cnt < CW'(KF));
      w2_v <= w1_v;
    end
    w1_p <= emem[ws_j] * rz;
    w1_first <= (ws_j == '0);
    w1_last <= (ws_j == KW'(K - 1));
    w1_f0 <= (ws_f == '0);
    w1_f <= ws_f;
    xa_rd <= ws_xa;
    w2_a <= a_full[E+G +: AW];
    w2_first <= w1_first;
    w2_last <= w1_last;
    w2_f0 <= w1_f0;
    w2_f <= w1_f;
  end

  // back-end FSM
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      st <= S_IDLE;
      rb <= 1'b0;
      cnt <= '0;
    end else begin
      case (st)
        S_IDLE: if (bank_rdy[rb]) begin
          st <= S_EXP;
          cnt <= '0;
        end
        S_EXP: if (cnt == CW'(K + 1)) begin
          st <= S_DIV;
          cnt <= '0;
        end else begin
          cnt <= cnt + 1'b1;
        end
        S_DIV: if (cnt == CW'(QW - 1)) begin
          st <= S_WAIT;
          cnt <= '0;
        end else begin
          cnt <= cnt + 1'b1;
        end
        S_WAIT: if (hold_cnt == '0 && wq_cnt == '0) begin
          st <= S_WSUM;
          cnt <= '0;
        end
        S_WSUM: if (cnt == CW'(KF + 1)) begin
          st <= S_DONE;
          cnt <= '0;
        end else begin
          cnt <= cnt + 1'b1;
        end
        default: begin    // S_DONE
          st <= S_IDLE;
          rb <= !rb;
        end
      endcase
    end
    if (st == S_IDLE) begin
      m_cur <= m_bank[rb];
      any_cur <= any_bank[rb];
      z <= '0;
      ws_j <= '0;
      ws_f <= '0;
      ws_xa <= rb ? XAW'(KF) : '0;
    end
    if (e2_v) z <= z + ZW'(e_val);
    if (st == S_EXP) begin
      rem <= ZW'(1) << (E - 1);
      quo <= '0;
    end
    if (st == S_DIV) begin
      if (r2 >= {1'b0, z}) begin
        rem <= ZW'(r2 - {1'b0, z});
        quo <= {quo[QW-2:0], 1'b1};
      end else begin
        rem <= r2[ZW-1:0];
        quo <= {quo[QW-2:0], 1'b0};
      end
    end
    if (st == S_WSUM && cnt < CW'(KF)) begin
      ws_xa <= ws_xa + 1'b1;
      if (ws_f == FW'(FOLD - 1)) begin
        ws_f <= '0;
        ws_j <= ws_j + 1'b1;
      end else begin
        ws_f <= ws_f + 1'b1;
      end
    end
  end

  // ---------------------------------------------------------------- weighted sum (w2)
  logic [PE*UW-1:0] acc_mem [0:(1 << FW) - 1];
  logic [PE*UW-1:0] acc_rd, acc_nx;
  logic [PE*OUT_BITS-1:0] u_nx;
  assign acc_rd = acc_mem[w2_f];
  localparam logic signed [UW-1:0] RND_U = (SHU > 0) ? (UW'(1) << (SHU - 1)) : '0;

  for (genvar j = 0; j < PE; j++) begin : g_ws
    logic signed [XB-1:0] xv;
    logic signed [UW-1:0] prod, old, nx;
    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [UW-1:0] rounded;  // the low W-F bits are shifted out
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [UW-SHU-1:0] sh;
    if (IN_SIGNED != 0) begin : g_s
      assign xv = $signed(x_rd[j*IN_BITS +: IN_BITS]);
    end else begin : g_u
      assign xv = $signed({1'b0, x_rd[j*IN_BITS +: IN_BITS]});
    end
    logic signed [AW:0] av;
    assign av = $signed({1'b0, w2_a});
    if (LUT_MUL != 0) begin : g_lut
      always_comb begin
        prod = '0;
        for (int b = 0; b < XB - 1; b++) if (xv[b]) prod = prod + (UW'(av) <<< b);
        if (xv[XB-1]) prod = prod - (UW'(av) <<< (XB - 1));
      end
    end else begin : g_dsp
      assign prod = UW'(av * xv);
    end
    assign old = acc_rd[j*UW +: UW];
    assign nx = (w2_first ? UW'(0) : old) + prod;
    assign acc_nx[j*UW +: UW] = nx;
    assign rounded = nx + RND_U;
    assign sh = rounded[UW-1:SHU];
    // clamp to OUT_BITS (the input's signedness)
    if (IN_SIGNED != 0) begin : g_cs
      if (UW - SHU > OUT_BITS) begin : g_c
        localparam logic signed [UW-SHU-1:0] HI = (UW-SHU)'((64'sd1 <<< (OUT_BITS - 1)) - 1);
        localparam logic signed [UW-SHU-1:0] LO = (UW-SHU)'(-(64'sd1 <<< (OUT_BITS - 1)));
        assign u_nx[j*OUT_BITS +: OUT_BITS] = (sh > HI) ? OUT_BITS'(HI) : (sh < LO) ? OUT_BITS'(LO) : OUT_BITS'(sh);
      end else begin : g_n
        assign u_nx[j*OUT_BITS +: OUT_BITS] = OUT_BITS'(sh);
      end
    end else begin : g_cu
      if (UW - SHU > OUT_BITS + 1) begin : g_c
        localparam logic signed [UW-SHU-1:0] HI = (UW-SHU)'((64'sd1 <<< OUT_BITS) - 1);
        assign u_nx[j*OUT_BITS +: OUT_BITS] = (sh > HI) ? OUT_BITS'(HI) : (sh < 0) ? '0 : OUT_BITS'(sh);
      end else begin : g_n
        assign u_nx[j*OUT_BITS +: OUT_BITS] = (sh < 0) ? '0 : OUT_BITS'(sh);
      end
    end
  end

  always_ff @(posedge ap_clk) begin
    if (w2_v && !w2_last) acc_mem[w2_f] <= acc_nx;
  end

  // ---------------------------------------------------------------- out0 FIFO + register
  logic [PE*OUT_BITS-1:0] hold_mem [0:HD-1];
  logic [HPW-1:0] hold_wp, hold_rp;
  logic hold_wr, hold_rd;
  assign hold_wr = w2_v && w2_last;
  assign hold_rd = (hold_cnt != '0) && (!out0_V_TVALID || out0_V_TREADY);

  always_ff @(posedge ap_clk) begin
    if (hold_wr) hold_mem[hold_wp] <= u_nx;
    if (hold_rd) out0_V_TDATA <= hold_mem[hold_rp];
    if (!ap_rst_n) begin
      hold_wp <= '0;
      hold_rp <= '0;
      hold_cnt <= '0;
      out0_V_TVALID <= 1'b0;
    end else begin
      if (hold_wr) hold_wp <= (hold_wp == HPW'(HD - 1)) ? '0 : hold_wp + 1'b1;
      if (hold_rd) hold_rp <= (hold_rp == HPW'(HD - 1)) ? '0 : hold_rp + 1'b1;
      hold_cnt <= hold_cnt + HCW'(hold_wr) - HCW'(hold_rd);
      if (hold_rd) out0_V_TVALID <= 1'b1;
      else if (out0_V_TREADY) out0_V_TVALID <= 1'b0;
    end
  end

  // ---------------------------------------------------------------- out1 FIFO + register
  if (EMIT_WEIGHTS != 0) begin : g_weights
    logic [AW-1:0] wq_mem [0:WD-1];
    logic [WPW-1:0] wq_wp, wq_rp;
    logic wq_wr, wq_rd;
    assign wq_wr = w2_v && w2_f0;
    assign wq_rd = (wq_cnt != '0) && (!out1_V_TVALID || out1_V_TREADY);
    always_ff @(posedge ap_clk) begin
      if (wq_wr) wq_mem[wq_wp] <= w2_a;
      if (wq_rd) out1_V_TDATA <= wq_mem[wq_rp];
      if (!ap_rst_n) begin
        wq_wp <= '0;
        wq_rp <= '0;
        wq_cnt <= '0;
        out1_V_TVALID <= 1'b0;
      end else begin
        if (wq_wr) wq_wp <= (wq_wp == WPW'(WD - 1)) ? '0 : wq_wp + 1'b1;
        if (wq_rd) wq_rp <= (wq_rp == WPW'(WD - 1)) ? '0 : wq_rp + 1'b1;
        wq_cnt <= wq_cnt + WCW'(wq_wr) - WCW'(wq_rd);
        if (wq_rd) out1_V_TVALID <= 1'b1;
        else if (out1_V_TREADY) out1_V_TVALID <= 1'b0;
      end
    end
  end else begin : g_no_weights
    assign wq_cnt = '0;
    assign out1_V_TDATA = '0;
    assign out1_V_TVALID = 1'b0;
    wire unused_weights = &{1'b0, out1_V_TREADY, w2_f0};
  end
endmodule
