// Verilator testbench of a stitched design (fpgarec.hwsim): streams queries into in0, collects
// out0 with cycle stamps, random input gaps and output back-pressure, stall detection.
//
// Usage: tb IN.bin N_QUERIES OUT.bin STATS.json GAP BACKPRESSURE SEED ISOLATE STALL_CYCLES MAX_CYCLES
//           INTERVAL [OUT1.bin]
//   IN.bin:   for each input stream i (in0, in1, ...) in turn, N_QUERIES * IN_BEATS[i] beats of
//             IN_WORDS[i] little-endian uint32 words
//   OUT.bin:  every output beat, OUT_WORDS uint32 words each
//   STATS:    JSON: per query the cycle of its first accepted input beat and of its last output
//             beat, peak FIFO occupancies, total cycles; on a stall the FIFO occupancies
//   GAP:      probability that a beat not yet presented is held back in a cycle, per input
//             stream (AXI: a presented beat stays until accepted)
//   BACKPRESSURE: probability that out0_TREADY is low in a cycle (drawn anew for out1_TREADY)
//   OUT1.bin: (designs built with -DHAS_OUT1, a second output such as the attention weights)
//             every out1 beat, OUT1_WORDS uint32 words each; OUT1_BEATS beats per query
//   ISOLATE:  1 = present query q+1 only after query q's last output beat (batch-1 latency)
//   INTERVAL: query q's first beat is presented no earlier than cycle q * INTERVAL (0: at once;
//             the FIFO sizing paces the input at the design's rate)
// Exit codes: 0 done, 3 stalled (no beat in or out for STALL_CYCLES cycles), 4 MAX_CYCLES hit.
// N_INPUTS, IN_BEATS[], IN_WORDS[], OUT_BEATS, OUT_WORDS, N_FIFOS and the port helpers
// (set_valid, get_ready, set_in, get_out, get_occupancy) come from the generated tb_config.h;
// with HAS_OUT1 also OUT1_BEATS, OUT1_WORDS and get_out1.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "Vdesign_top.h"
#include "verilated.h"
#include "tb_config.h"

static uint64_t rng_state;
static inline uint64_t xorshift() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static inline bool chance(double p) { return p > 0 && (double)(xorshift() >> 11) * (1.0 / 9007199254740992.0) < p; }

#ifdef HAS_OUT1
static const int N_ARGS = 13;
#else
static const int N_ARGS = 12;
#endif

int main(int argc, char** argv) {
  if (argc != N_ARGS) {
    std::fprintf(stderr, "usage: tb IN.bin N OUT.bin STATS.json GAP BP SEED ISOLATE STALL MAX INTERVAL%s\n",
                 N_ARGS == 13 ? " OUT1.bin" : "");
    return 2;
  }
  const long nq = std::atol(argv[2]);
  const double gap = std::atof(argv[5]), bp = std::atof(argv[6]);
  rng_state = std::strtoull(argv[7], nullptr, 10) * 2654435761ULL + 88172645463325252ULL;
  const bool isolate = std::atoi(argv[8]) != 0;
  const long stall_limit = std::atol(argv[9]);
  const long max_cycles = std::atol(argv[10]);
  const long interval = std::atol(argv[11]);

  std::vector<std::vector<uint32_t>> in(N_INPUTS);
  FILE* f = std::fopen(argv[1], "rb");
  for (int i = 0; i < N_INPUTS; i++) {
    in[i].resize((size_t)nq * IN_BEATS[i] * IN_WORDS[i]);
    if (!f || std::fread(in[i].data(), 4, in[i].size(), f) != in[i].size()) {
      std::fprintf(stderr, "cannot read input %d from %s\n", i, argv[1]);
      return 2;
    }
  }
  std::fclose(f);
  std::vector<uint32_t> out((size_t)nq * OUT_BEATS * OUT_WORDS);
  std::vector<long> first_in(nq, -1), last_out(nq, -1);
  std::vector<unsigned> peak(N_FIFOS, 0), occ(N_FIFOS, 0);
#ifdef HAS_OUT1
  std::vector<uint32_t> out1((size_t)nq * OUT1_BEATS * OUT1_WORDS);
  const long out1_total = nq * OUT1_BEATS;
  long out1_got = 0;
#define OUT1_PENDING (out1_got < out1_total)
#else
#define OUT1_PENDING false
#endif

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto top = std::make_unique<Vdesign_top>(ctx.get());
  top->ap_clk = 0;
  top->ap_rst_n = 0;
  for (int i = 0; i < N_INPUTS; i++) set_valid(top.get(), i, false);
  top->out0_V_TREADY = 0;
#ifdef HAS_OUT1
  top->out1_V_TREADY = 0;
#endif
  for (int i = 0; i < 8; i++) {
    top->ap_clk = 0; top->eval();
    top->ap_clk = 1; top->eval();
  }
  top->ap_rst_n = 1;

  const long out_total = nq * OUT_BEATS;
  long in_sent[N_INPUTS] = {0}, out_got = 0, cycle = 0, idle = 0;
  bool presenting[N_INPUTS] = {false};
  int rc = 0;
  while (out_got < out_total || OUT1_PENDING) {
    // drive this cycle's inputs
    for (int i = 0; i < N_INPUTS; i++) {
      if (!presenting[i] && in_sent[i] < nq * IN_BEATS[i]) {
        const long q = in_sent[i] / IN_BEATS[i];
        bool allowed = (!isolate || q * OUT_BEATS <= out_got) && cycle >= q * interval;
        if (allowed && !chance(gap)) presenting[i] = true;
      }
      set_valid(top.get(), i, presenting[i]);
      if (presenting[i]) set_in(top.get(), i, &in[i][(size_t)in_sent[i] * IN_WORDS[i]]);
    }
    const bool ready = !chance(bp);
    top->out0_V_TREADY = ready;
#ifdef HAS_OUT1
    const bool ready1 = OUT1_PENDING && !chance(bp);  // independent of out0's
    top->out1_V_TREADY = ready1;
#endif
    top->ap_clk = 0;
    top->eval();
    // sample the settled handshakes: a transfer happens at the coming edge
    bool progress = false;
    for (int i = 0; i < N_INPUTS; i++) {
      if (presenting[i] && get_ready(top.get(), i)) {
        if (i == 0 && in_sent[0] % IN_BEATS[0] == 0) first_in[in_sent[0] / IN_BEATS[0]] = cycle;
        in_sent[i]++;
        presenting[i] = false;
        progress = true;
      }
    }
    if (ready && top->out0_V_TVALID) {
      get_out(top.get(), &out[(size_t)out_got * OUT_WORDS]);
      if (out_got % OUT_BEATS == OUT_BEATS - 1) last_out[out_got / OUT_BEATS] = cycle;
      out_got++;
      progress = true;
    }
#ifdef HAS_OUT1
    if (ready1 && top->out1_V_TVALID) {
      get_out1(top.get(), &out1[(size_t)out1_got * OUT1_WORDS]);
      out1_got++;
      progress = true;
    }
#endif
    get_occupancy(top.get(), occ.data());
    for (int i = 0; i < N_FIFOS; i++) if (occ[i] > peak[i]) peak[i] = occ[i];
    top->ap_clk = 1;
    top->eval();
    cycle++;
    idle = progress ? 0 : idle + 1;
    if (idle >= stall_limit) { rc = 3; break; }
    if (cycle >= max_cycles) { rc = 4; break; }
  }
  top->final();

  FILE* o = std::fopen(argv[3], "wb");
  std::fwrite(out.data(), 4, (size_t)out_got * OUT_WORDS, o);
  std::fclose(o);
#ifdef HAS_OUT1
  FILE* o1 = std::fopen(argv[12], "wb");
  std::fwrite(out1.data(), 4, (size_t)out1_got * OUT1_WORDS, o1);
  std::fclose(o1);
#endif
  FILE* s = std::fopen(argv[4], "w");
  std::fprintf(s, "{\"status\": %d, \"cycles\": %ld, \"in_beats\": %ld, \"out_beats\": %ld,\n", rc, cycle, in_sent[0], out_got);
#ifdef HAS_OUT1
  std::fprintf(s, " \"out1_beats\": %ld,\n", out1_got);
#endif
  std::fprintf(s, " \"occupancy\": [");
  for (int i = 0; i < N_FIFOS; i++) std::fprintf(s, "%s%u", i ? ", " : "", occ[i]);
  std::fprintf(s, "],\n \"peak\": [");
  for (int i = 0; i < N_FIFOS; i++) std::fprintf(s, "%s%u", i ? ", " : "", peak[i]);
  std::fprintf(s, "],\n \"first_in\": [");
  for (long q = 0; q < nq; q++) std::fprintf(s, "%s%ld", q ? ", " : "", first_in[q]);
  std::fprintf(s, "],\n \"last_out\": [");
  for (long q = 0; q < nq; q++) std::fprintf(s, "%s%ld", q ? ", " : "", last_out[q]);
  std::fprintf(s, "]}\n");
  std::fclose(s);
  return rc;
}
