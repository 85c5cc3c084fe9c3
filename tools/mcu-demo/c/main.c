/* The Cortex-M4F demo in C: a bare-metal main (no libc, no heap) that opens
 * the embedded model with the lsgm C API, scores the embedded feature rows
 * and prints each score over semihosting, in the Rust firmware's log format
 * so ../run.sh compares both with the host the same way:
 *   "score FRAME VALUE ood=0|1 ticks=T", VALUE as the float's exact bits
 * (0x…; run.sh turns them into decimals). SysTick counts the core clock;
 * under QEMU's -icount shift=0 one tick is 40 instructions, checked on a
 * delay loop of known length as the Rust firmware does. At the end: the
 * stack's high-water mark (painted at reset) and one bad input's status.
 * Built by ../run.sh --c with MODEL_PATH and FEATURES_PATH defined. */
#include "lsgm.h"

#define STR2(x) #x
#define STR(x) STR2(x)

/* The model and features, embedded as they are (8- and 4-byte aligned). */
__asm__(".section .rodata.embedded, \"a\"\n"
        ".balign 8\n.global model_bytes\nmodel_bytes:\n.incbin \"" STR(MODEL_PATH) "\"\n"
        ".global model_end\nmodel_end:\n"
        ".balign 4\n.global feature_bytes\nfeature_bytes:\n.incbin \"" STR(FEATURES_PATH) "\"\n"
        ".global feature_end\nfeature_end:\n.text\n");
extern const uint8_t model_bytes[], model_end[];
extern const float feature_bytes[], feature_end[];

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _stack_top[];

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define PAINT 0xC0FFEE11u

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

/* Writes `s` to QEMU's stdout: SYS_WRITE to the ":tt" file opened for
 * writing (SYS_WRITE0 would go to its stderr). */
static void put(const char *s) {
  static int tt = -1;
  if (tt < 0) {
    const uintptr_t open[3] = {(uintptr_t)":tt", 4, 3}; /* mode 4: "w" */
    tt = semihost(0x01, open);
  }
  size_t n = 0;
  while (s[n]) n++;
  const uintptr_t write[3] = {(uintptr_t)tt, (uintptr_t)s, n};
  semihost(0x05, write);
}

static void put_u32(uint32_t v, int hex) {
  char buf[16], *p = buf + sizeof buf - 1;
  *p = 0;
  do {
    *--p = "0123456789abcdef"[v % (hex ? 16 : 10)];
    v /= hex ? 16 : 10;
  } while (v);
  if (hex) { *--p = 'x'; *--p = '0'; }
  put(p);
}

static void finish(int ok) { /* SYS_EXIT: ApplicationExit (QEMU exits 0) or RunTimeErrorUnknown (1) */
  semihost(0x18, (const void *)(ok ? 0x20026u : 0x20023u));
  for (;;) {}
}

static uint32_t ticks_since(uint32_t start) { return (start - SYST_CVR) & 0x00FFFFFFu; }

static LsgmModel model;
static float scratch[2048];

static void fail(const char *what, LsgmStatus s) {
  put(what);
  put(": ");
  put(lsgm_status_message(s));
  put("\n");
  finish(0);
}

int main(void) {
  SYST_RVR = 0x00FFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 5; /* enable, core clock */
  uint32_t n = 1000001, t = SYST_CVR; /* subs; bne: 2,000,002 instructions */
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
  put("calibration ");
  put_u32(ticks_since(t), 0);
  put(" ticks for delay(1000000)\n");

  LsgmStatus s = lsgm_model_open(&model, sizeof model, model_bytes, (size_t)(model_end - model_bytes));
  if (s != LSGM_OK) fail("model", s);
  LsgmModelInfo info;
  LsgmLayerInfo layers[16];
  size_t frame_len = 0;
  if ((s = lsgm_model_info(&model, &info)) != LSGM_OK) fail("info", s);
  if (info.scratch_len > sizeof scratch / sizeof *scratch || info.layer_count > 16) fail("buffers", LSGM_OK);
  for (size_t l = 0; l < info.layer_count; l++) {
    if ((s = lsgm_layer_info(&model, l, &layers[l])) != LSGM_OK) fail("layer", s);
    frame_len += layers[l].dim_in;
  }
  size_t frames = (size_t)(feature_end - feature_bytes) / frame_len;
  put("model ");
  put_u32((uint32_t)(model_end - model_bytes), 0);
  put(" bytes, ");
  put_u32(info.layer_count, 0);
  put(" layers, ");
  put_u32(frames, 0);
  put(" frames (C API)\n");

  for (size_t f = 0; f < frames; f++) {
    LsgmFeatureRow rows[16];
    const float *at = feature_bytes + f * frame_len; /* zero-copy: the rows point into flash */
    for (size_t l = 0; l < info.layer_count; l++) {
      rows[l] = (LsgmFeatureRow){at, layers[l].dim_in};
      at += layers[l].dim_in;
    }
    LsgmVerdict v;
    t = SYST_CVR;
    s = lsgm_judge(&model, rows, info.layer_count, scratch, info.scratch_len, NULL, NULL, 0, &v);
    uint32_t ticks = ticks_since(t), bits;
    if (s != LSGM_OK) fail("score", s);
    __builtin_memcpy(&bits, &v.score, 4);
    put("score ");
    put_u32(f, 0);
    put(" ");
    put_u32(bits, 1);
    put(v.ood ? " ood=1 ticks=" : " ood=0 ticks=");
    put_u32(ticks, 0);
    put("\n");
  }
  /* One bad input on the board too: a row one feature short. */
  LsgmFeatureRow bad[16];
  for (size_t l = 0; l < info.layer_count; l++) bad[l] = (LsgmFeatureRow){feature_bytes, layers[l].dim_in};
  bad[0].len--;
  float score = 0;
  s = lsgm_score(&model, bad, info.layer_count, scratch, info.scratch_len, NULL, 0, &score);
  if (s != LSGM_FEATURE_LENGTH) fail("a short row was not refused", s);
  put("short row: ");
  put(lsgm_status_message(s));
  put("\n");

  uint32_t *p = _ebss;
  while (p < _stack_top && *p == PAINT) p++;
  put("stack used ");
  put_u32((uint32_t)((char *)_stack_top - (char *)p), 0);
  put(" bytes, static RAM ");
  put_u32((uint32_t)((char *)_ebss - (char *)_sdata), 0);
  put(" bytes\n");
  finish(1);
  return 0;
}

/* Reset: FPU on (the library is built for hard-float), .data copied, .bss
 * zeroed, the free RAM below the stack painted for the high-water mark. */
__attribute__((noreturn)) void reset(void) {
  CPACR |= 0xFu << 20;
  __asm__ volatile("dsb\n isb");
  for (uint32_t *src = _sidata, *dst = _sdata; dst < _edata;) *dst++ = *src++;
  for (uint32_t *dst = _sbss; dst < _ebss;) *dst++ = 0;
  uint32_t *sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t *p = _ebss; p < sp - 64; p++) *p = PAINT;
  main();
  finish(0);
  for (;;) {}
}

static void fault(void) {
  put("fault\n");
  finish(0);
}

/* Initial stack pointer, reset, NMI, HardFault, MemManage, BusFault, UsageFault. */
__attribute__((section(".vectors"), used)) static const void *const vectors[] = {
    _stack_top, (const void *)reset, (const void *)fault, (const void *)fault,
    (const void *)fault, (const void *)fault, (const void *)fault,
};
