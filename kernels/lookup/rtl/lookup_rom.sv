// lookup_rom: FINN's Lookup (Gather with a constant table) in RTL: y = T[id].
//
// Integer semantics: kernels/lookup/golden.py (the specification): for every input id,
// D table entries T[id, 0..D-1] (BITS bits each, two's complement or unsigned: the bits are
// copied, no arithmetic). An id >= N_ENTRIES is a caller error (the host checks ids); the
// RTL then returns whatever the ROM word at that address is (Yosys pads the ROM with 0).
// Streams:
//   in0:  one id per beat (ID_BITS)
//   out0: per id D/PE beats of PE lanes; beat f lane j = T[id, f*PE + j]
// Table file (TABLE_FILE, $readmemh): N_ENTRIES lines, line i = row i, entry d at bits
// [d*BITS +: BITS] (kernels/lookup/golden.write_table_mem).
//
// Micro-architecture: stage A holds the accepted id; the ROM read (a registered read with an
// enable, so Yosys infers block RAM: for D*BITS = 256 and 1,683 rows that is 8 x 4 RAMB18E1)
// moves it into stage B, which streams its D/PE slices. A moves into B when B is empty or
// sends its last slice; one id per D/PE cycles in steady state.
module lookup_rom #(
  parameter int N_ENTRIES = 16,
  parameter int D = 4,
  parameter int PE = 4,
  parameter int BITS = 4,
  parameter int ID_BITS = 4,
  parameter TABLE_FILE = ""        // $readmemh file (golden.table_mem_lines); "" = no init
)(
  input  logic ap_clk, ap_rst_n,
  input  logic [ID_BITS-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  output logic [PE*BITS-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY
);
  localparam int FOLD = D / PE;
  localparam int FW = (FOLD > 1) ? $clog2(FOLD) : 1;
  localparam int W = D * BITS;
  if (D % PE != 0) begin : g_err_fold
    $error("lookup_rom: PE must divide D");
  end

  /* verilator lint_off UNDRIVEN */
  (* rom_style = "block" *) logic [W-1:0] rom [N_ENTRIES];   // written by $readmemh only
  /* verilator lint_on UNDRIVEN */
  if (TABLE_FILE != "") begin : g_init
    initial $readmemh(TABLE_FILE, rom);
  end

  logic a_valid, b_valid, b_free, last;
  logic [ID_BITS-1:0] a_id;
  logic [W-1:0] word;
  logic [FW-1:0] cnt;

  assign last = (FOLD == 1) || (cnt == FW'(FOLD - 1));
  assign b_free = !b_valid || (out0_V_TREADY && last);
  assign in0_V_TREADY = !a_valid || b_free;
  assign out0_V_TVALID = b_valid;
  if (FOLD == 1) begin : g_one
    assign out0_V_TDATA = word;
  end else begin : g_slice
    assign out0_V_TDATA = word[cnt*PE*BITS +: PE*BITS];
  end

  always_ff @(posedge ap_clk) begin
    if (b_free && a_valid) word <= rom[a_id];
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      a_valid <= 1'b0;
      b_valid <= 1'b0;
      cnt <= '0;
      a_id <= '0;
    end else begin
      if (in0_V_TVALID && in0_V_TREADY) begin
        a_valid <= 1'b1;
        a_id <= in0_V_TDATA;
      end else if (b_free) begin
        a_valid <= 1'b0;
      end
      if (b_free) begin
        b_valid <= a_valid;
        cnt <= '0;
      end else if (out0_V_TVALID && out0_V_TREADY) begin
        cnt <= cnt + 1'b1;
      end
    end
  end
endmodule
