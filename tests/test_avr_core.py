"""The core on a 16-bit-int target: every golden scenario (tests/golden/*.json, computed by tools/intref.py) run on
an 8-bit AVR in simavr must give the golden integers. Guards against int-width assumptions (an int constant or
shift, an implicit promotion) that the host's 32-bit int hides: issue 14 found `16 << 12` (0 or undefined with a
16-bit int), which made every sigmoid and tanh saturate on AVR.

One firmware (the ATmega1284P: the ATmega328P's AVR core and int, with the RAM and flash for every scenario and
the whole core) replays each scenario as tests/test_golden.py's run_scenario_c does, with the library's calls in
the same order: init and seed, the traced samples and a step, the training epochs, predict and evaluate. It prints
the integers on UART0 (simavr-run --stdio), which are compared with the golden files'. A second check compiles
the core for AVR with clang, whose -Wshift-overflow knows that int has 16 bits there."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.json"))
TRACE_MAX = 3          # tools/gen_golden.py TRACE_MAX: samples traced (and stepped once) before the epochs
STATS = ("sat_out", "sat_delta", "sat_grad", "sat_param", "sat_vel", "updates", "zero_updates")
MCU = "atmega1284p"

PROLOGUE = r"""
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <stdint.h>
#include "edgebp.h"

static int16_t xb[MAX_X], tb[MAX_T], yb[MAX_T]; /* a scenario's data, copied from flash */

static void putc_(char c) { while (!(UCSR0A & (1u << UDRE0))) {} UDR0 = (uint8_t)c; }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void put_i64(int64_t v) {
    char t[24]; int n = 0;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do t[n++] = (char)('0' + (int)(m % 10u)); while ((m /= 10u) != 0);
    putc_(' ');
    if (v < 0) putc_('-');
    while (n) putc_(t[--n]);
}
static int64_t arena[ARENA_BYTES / 8] __attribute__((aligned(8)));
static ebp_net_t net;

static void params(const char *key, int vel) {
    uint8_t l;
    uint32_t k;
    puts_(key);
    for (l = 0; l < net.cfg.n_layers; l++) {
        const ebp_layer_t *L = &net.layers[l];
        if (vel) {
            if (L->vw == 0) continue;
            for (k = 0; k < L->n_w; k++) put_i64(L->vw[k]);
            for (k = 0; k < L->n_b; k++) put_i64(L->vb[k]);
        } else if (L->w8 != 0) {
            for (k = 0; k < L->n_w; k++) put_i64(L->w8[k]);
            for (k = 0; k < L->n_b; k++) put_i64(L->b8[k]);
        } else {
            for (k = 0; k < L->n_w; k++) put_i64(L->w[k]);
            for (k = 0; k < L->n_b; k++) put_i64(L->b[k]);
        }
    }
    putc_('\n');
}

static void state(const char *tag) {
    uint8_t l;
    puts_(tag); putc_('\n');
    params("weights", 0);
    params("velocities", 1);
    puts_("stats");
    for (l = 0; l < net.cfg.n_layers; l++) {
        const ebp_layer_stats_t *s = &net.layers[l].stats;
        put_i64(s->sat_out); put_i64(s->sat_delta); put_i64(s->sat_grad); put_i64(s->sat_param);
        put_i64(s->sat_vel); put_i64(s->updates); put_i64(s->zero_updates);
    }
    puts_("\nrng"); put_i64(net.rng);
    puts_("\nsteps"); put_i64(net.steps);
    putc_('\n');
}

static void fail(const char *what, int st) { puts_("error "); puts_(what); put_i64(st); putc_('\n'); }

static void scenario(const char *name, const ebp_cfg_t *c, const ebp_hparams_t *hp, int init_kind, uint16_t range,
                     uint32_t seed, const int16_t *x, const int16_t *t, uint16_t n, uint32_t batch, int epochs,
                     int16_t *y) {
    int st, e;
    uint16_t s, first, traced, n_in = c->n_in, n_out;
    int64_t loss64;
    int32_t loss;
    uint32_t correct;
    puts_("scenario "); puts_(name); putc_('\n');
    st = ebp_net_init(&net, c, EBP_MODE_TRAIN, arena, sizeof arena);
    if (st != EBP_OK) { fail("init", st); return; }
    st = ebp_net_init_weights(&net, init_kind, range, seed);
    if (st != EBP_OK) { fail("init_weights", st); return; }
    ebp_net_seed(&net, seed);
    ebp_net_set_hparams(&net, hp);
    n_out = net.layers[c->n_layers - 1].n_out;
    params("init", 0);
    first = batch == 0 || batch > n ? n : (uint16_t)batch;
    traced = (c->flags & EBP_FLAG_ONLINE) ? n : first;
    if (traced > TRACE_MAX) traced = TRACE_MAX;
    for (s = 0; s < traced; s++) {
        if (c->flags & EBP_FLAG_ONLINE) {
            st = ebp_train(&net, x + (uint32_t)s * n_in, t + (uint32_t)s * n_out, 1, 1, &loss64);
        } else {
            st = ebp_forward(&net, x + (uint32_t)s * n_in, 0);
            if (st == EBP_OK) st = ebp_backward(&net, t + (uint32_t)s * n_out, &loss);
        }
        if (st != EBP_OK) { fail("trace", st); return; }
    }
    st = ebp_step(&net);
    if (st != EBP_OK) { fail("step", st); return; }
    state("step");
    puts_("train_loss_sums");
    for (e = 0; e < epochs; e++) {
        st = ebp_train(&net, x, t, n, batch, &loss64);
        if (st != EBP_OK) { fail("train", st); return; }
        put_i64(loss64);
    }
    putc_('\n');
    state("train");
    ebp_predict(&net, x, n, y);
    puts_("predict");
    for (s = 0; s < (uint16_t)(n * n_out); s++) put_i64(y[s]);
    ebp_evaluate(&net, x, t, n, &loss64, &correct);
    puts_("\nevaluate"); put_i64(loss64); put_i64(correct);
    putc_('\n');
}
"""


def c_array(ctype, name, vals):
    return f"static {ctype} {name}[{max(1, len(vals))}] = {{{', '.join(str(int(v)) for v in vals) or '0'}}};"


def scenario_source(k, g):
    """runK(): scenario g's configuration, and its data in flash (copied into xb, tb before the run)."""
    c = g["core"]
    ext = c.get("layer_ext") or [[0, 0, 0, 0, 0]] * len(c["layers"])
    X = [v for row in g["X"] for v in row]
    T = [v for row in g["T"] for v in row]
    lines = [f"static const int16_t x{k}[{len(X)}] PROGMEM = {{{', '.join(str(int(v)) for v in X)}}};",
             f"static const int16_t t{k}[{len(T)}] PROGMEM = {{{', '.join(str(int(v)) for v in T)}}};",
             f"static void run{k}(void) {{", "    ebp_cfg_t c;", "    ebp_hparams_t hp;", "    uint16_t i;",
             "    for (i = 0; i < sizeof c; i++) ((uint8_t *)&c)[i] = 0;",
             f"    memcpy_P(xb, x{k}, sizeof x{k});", f"    memcpy_P(tb, t{k}, sizeof t{k});",
             f"    c.n_in = {c['n_in']}; c.in_frac = {c['in_frac']}; c.n_layers = {len(c['layers'])};",
             f"    c.loss = {c['loss']}; c.optimizer = {c['optimizer']}; c.rounding = {c['rounding']};",
             f"    c.flags = {c['flags']}; c.in_ch = {c.get('in_ch', 0)};"]
    for l, ((n_out, act, wf, af), (kind, frozen, kernel, stride, wbits)) in enumerate(zip(c["layers"], ext)):
        lines.append(f"    c.layers[{l}].n_out = {n_out}; c.layers[{l}].act = {act}; c.layers[{l}].w_frac = {wf}; "
                     f"c.layers[{l}].a_frac = {af}; c.layers[{l}].kind = {kind}; c.layers[{l}].frozen = {frozen}; "
                     f"c.layers[{l}].kernel = {kernel}; c.layers[{l}].stride = {stride}; "
                     f"c.layers[{l}].w_bits = {wbits};")
    lines += [f"    hp.lr_m = {c['lr_m']}; hp.lr_e = {c['lr_e']}; hp.momentum_q15 = {c['momentum_q15']};",
              f"    scenario(\"{g['name']}\", &c, &hp, {c['init_kind']}, {c['init_range_q12']}, {c['seed']}u, xb, "
              f"tb, {len(g['X'])}, {g['batch']}u, {g['epochs']}, yb);", "}"]
    return "\n".join(lines)


def program(goldens, arena_bytes):
    max_x = max(len(g["X"]) * len(g["X"][0]) for g in goldens)
    max_t = max(len(g["T"]) * len(g["T"][0]) for g in goldens)
    parts = [f"#define ARENA_BYTES {arena_bytes}", f"#define TRACE_MAX {TRACE_MAX}", f"#define MAX_X {max_x}",
             f"#define MAX_T {max_t}", PROLOGUE]
    parts += [scenario_source(k, g) for k, g in enumerate(goldens)]
    calls = "\n".join(f"    run{k}();" for k in range(len(goldens)))
    parts.append(f"""
__attribute__((section(".mmcu"), used)) const uint8_t mmcu[] = {{2, 4, 0x00, 0x24, 0xF4, 0x00,
    1, 12, 'a', 't', 'm', 'e', 'g', 'a', '1', '2', '8', '4', 'p', 0, 0, 0}};
int main(void) {{
    UBRR0H = 0; UBRR0L = 0; UCSR0A = (1u << U2X0); UCSR0C = (1u << UCSZ01) | (1u << UCSZ00); UCSR0B = (1u << TXEN0);
{calls}
    puts_("done\\n");
    while (!(UCSR0A & (1u << TXC0))) {{}}
    cli(); sleep_enable(); sleep_cpu();
    return 0;
}}""")
    return "\n".join(parts)


def flat_params(layers):
    """[[W rows, b] or [] per layer] -> the ints in the core's memory order (W row by row, then b)."""
    out = []
    for layer in layers:
        if layer:
            out += [int(v) for row in layer[0] for v in row] + [int(v) for v in layer[1]]
    return out


def expected_state(st):
    return {"weights": flat_params(st["weights"]), "velocities": flat_params(st["velocities"]),
            "stats": [int(s[k]) for s in st["stats"] for k in STATS], "rng": [int(st["rng"])],
            "steps": [int(st["steps"])]}


def parse(out):
    """{scenario: {key: [ints]}}, the 'step' and 'train' states as {key: [ints]}."""
    res, cur, tag = {}, None, None
    for line in out.splitlines():
        words = line.split()
        if not words or words[0] == "done":
            continue
        if words[0] == "scenario":
            cur, tag = res.setdefault(words[1], {}), None
        elif words[0] == "error":
            cur["error"] = line
        elif words[0] in ("step", "train") and len(words) == 1:
            tag = words[0]
            cur[tag] = {}
        elif tag is not None and words[0] in ("weights", "velocities", "stats", "rng", "steps"):
            cur[tag][words[0]] = [int(v) for v in words[1:]]
        else:
            cur[words[0]] = [int(v) for v in words[1:]]
    return res


def need_avr():
    need_tools("avr-gcc", "cc")
    if not Path("/usr/include/simavr/sim_avr.h").is_file():
        if os.environ.get("CI"):
            pytest.fail("libsimavr-dev is missing in CI (tools/setup.sh installs it)")
        pytest.skip("libsimavr-dev not installed")


def run_on_avr(docs, d, flags=()):
    """Builds one AVR firmware replaying every scenario doc (golden-file layout), runs it in simavr, parses.
    flags: more compiler flags for the core (the simavr-atmega328p board's, board_flags())."""
    from edgebp import NetSpec, TrainConfig
    from edgebp.fixed import FixedNet
    arena = max(FixedNet(NetSpec.from_dict(g["spec"]), TrainConfig(**g["train_config"])).memory_report()["total"]
                for g in docs)
    (d / "scenarios_avr.c").write_text(program(docs, (arena + 7) // 8 * 8 + 8))
    elf, runner = d / "scenarios.elf", d / "simavr-run"
    subprocess.run(["cc", "-O2", "-o", str(runner), str(ROOT / "firmware/ports/simavr-atmega328p/simavr_run.c"),
                    "-lsimavr"], check=True, capture_output=True)
    p = subprocess.run(["avr-gcc", f"-mmcu={MCU}", "-DF_CPU=16000000UL", "-Os", *flags, "-std=c99", "-Wall", "-Wextra",
                        "-Wconversion", "-Werror", "-ffunction-sections", "-fdata-sections", f"-I{ROOT / 'csrc'}",
                        str(ROOT / "csrc" / "edgebp.c"), "-Wl,--gc-sections", "-Wl,--section-start=.mmcu=0x910000",
                        "-o", str(elf), str(d / "scenarios_avr.c")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    r = subprocess.run([str(runner), "--mcu", MCU, "--stdio", "--max-cycles", "4000000000", str(elf)],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("done"), (r.returncode, r.stdout[-2000:], r.stderr[-500:])
    return parse(r.stdout)


def check_same(got, g):
    """The AVR run's integers equal the scenario doc's (golden file, or the host core's record)."""
    assert "error" not in got, got["error"]
    assert got["init"] == flat_params(g["init"]), "init"
    for tag in ("step", "train"):
        for key, vals in expected_state(g[tag]).items():
            assert got[tag][key] == vals, f"{tag}.{key}"
    assert got["train_loss_sums"] == [int(v) for v in g["train_loss_sums"]], "train_loss_sums"
    assert got["predict"] == [int(v) for row in g["predict"] for v in row], "predict"
    assert got["evaluate"] == [int(v) for v in g["evaluate"]], "evaluate"


@pytest.fixture(scope="module")
def avr_results(tmp_path_factory):
    need_avr()
    goldens = [json.loads((GOLDEN / f"{n}.json").read_text()) for n in NAMES]
    return run_on_avr(goldens, tmp_path_factory.mktemp("avr-golden")), goldens


@pytest.mark.parametrize("name", NAMES)
def test_golden_scenario_on_avr(avr_results, name):
    res, goldens = avr_results
    check_same(res[name], next(x for x in goldens if x["name"] == name))


def board_flags():
    """The simavr-atmega328p board's code-size flags and core feature switches (its board.mk)."""
    import sys
    sys.path.insert(0, str(ROOT / "tools" / "step_bench"))
    import avr
    return avr.board_flags()


def needs_switched_off_feature(g):
    """What in a scenario the Uno board's core compiles out (board.mk CORE_FEATURES), or None."""
    c = g["core"]
    ext = c.get("layer_ext") or []
    if any(e[0] != 0 for e in ext):
        return "conv1d/pooling"
    if any(e[4] == 8 for e in ext):
        return "int8"
    if any(layer[1] == 4 for layer in c["layers"]):
        return "softmax"
    if c["loss"] == 1:
        return "cross-entropy"
    if c["optimizer"] != 0 or not c["flags"] & 2:
        return "gradient memory"
    if c["flags"] & 1:
        return "fixed deltas"
    if c["init_kind"] != 0:
        return "Xavier/He init"
    return None


def test_golden_scenarios_with_the_uno_boards_core(tmp_path):
    """The core as simavr-atmega328p builds it (board.mk: -mcall-prologues and the other size flags, the feature
    switches off, the portable update loop instead of the fast rows): every golden scenario it can run gives the
    golden integers, and every one that needs a compiled-out feature is refused with EBP_ERR_FEATURE (-7) at
    ebp_net_init or ebp_net_init_weights, never run otherwise."""
    need_avr()
    goldens = [json.loads((GOLDEN / f"{n}.json").read_text()) for n in NAMES]
    res = run_on_avr(goldens, tmp_path, board_flags())
    ran = refused = 0
    for g in goldens:
        got, why = res[g["name"]], needs_switched_off_feature(g)
        if why is None:
            try:
                check_same(got, g)
            except AssertionError as e:
                raise AssertionError(f"{g['name']}: {e}") from None
            ran += 1
        else:
            assert got.get("error", "").split()[-1:] == ["-7"], (g["name"], why, got.get("error"))
            refused += 1
    assert ran >= 2 and refused >= 2, (ran, refused)


def draw_scenarios(strategy, n):
    """n examples of a tests/test_golden.py strategy, the same on every run (derandomized)."""
    from hypothesis import HealthCheck, given, settings
    out = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(sc):
        out.append(sc)

    collect()
    return out[:n]


def test_random_configurations_train_on_avr_like_on_the_host(tmp_path):
    """A differential run: random small networks of every kind (tests/test_golden.py's strategies: dense and
    conv/pooling, every activation, loss, optimizer, rounding, init, extreme formats and data, int8 layers,
    frozen layers, both update paths) trained by the host's core and by the AVR's; every integer equal."""
    need_avr()
    import test_golden as tg
    docs = []
    for kind, strategy in (("dense", tg.scenarios()), ("online", tg.scenarios(online=True)),
                           ("conv", tg.conv_scenarios())):
        for spec, cfg, X, T, batch, epochs in draw_scenarios(strategy, 30):
            rec, fn = tg.run_scenario_c(spec, cfg, X, T, batch, epochs)
            doc = dict(name=f"{kind}{len(docs)}", spec=spec.to_dict(), train_config=cfg.to_dict(),
                       core=fn.core_params(), X=X, T=T, batch=batch, epochs=epochs, **rec)
            docs.append(json.loads(json.dumps(doc)))
    res = run_on_avr(docs, tmp_path)
    for g in docs:
        try:
            check_same(res[g["name"]], g)
        except AssertionError as e:
            raise AssertionError(f"{g['name']}: {g['spec']} {g['train_config']}: {e}") from None
    # The Uno board's core (board.mk flags): the random online networks made runnable there (int16 weights,
    # sigmoid for softmax, squared error, EBP_FLAG_ONLINE, block floating point deltas, uniform init) train to the
    # host's integers; the drawn documents themselves, which nearly all need a compiled-out feature, are refused
    # (-7).
    import dataclasses
    uno = []
    for spec, cfg, X, T, batch, epochs in draw_scenarios(tg.scenarios(online=True), 30):
        spec = dataclasses.replace(spec, loss="mse", layers=[dataclasses.replace(
            layer, w_bits=16, act="sigmoid" if layer.act == "softmax" else layer.act) for layer in spec.layers])
        cfg = dataclasses.replace(cfg, online_only=True, fixed_delta=False, init="uniform")
        rec, fn = tg.run_scenario_c(spec, cfg, X, T, batch, epochs)
        doc = dict(name=f"uno{len(uno)}", spec=spec.to_dict(), train_config=cfg.to_dict(), core=fn.core_params(),
                   X=X, T=T, batch=batch, epochs=epochs, **rec)
        uno.append(json.loads(json.dumps(doc)))
    assert all(needs_switched_off_feature(g) is None for g in uno)
    (tmp_path / "uno").mkdir()
    res = run_on_avr(docs + uno, tmp_path / "uno", board_flags())
    for g in docs + uno:
        if needs_switched_off_feature(g) is not None:
            assert res[g["name"]].get("error", "").split()[-1:] == ["-7"], g["name"]
            continue
        try:
            check_same(res[g["name"]], g)
        except AssertionError as e:
            raise AssertionError(f"uno core, {g['name']}: {g['spec']} {g['train_config']}: {e}") from None


def test_clang_sees_no_int16_shift_overflow_in_the_core():
    """clang targets AVR without its libc: -Wshift-overflow then checks every constant shift against a 16-bit int
    (what caught `16 << 12`)."""
    need_tools("clang")
    p = subprocess.run(["clang", "--target=avr", "-mmcu=atmega328p", "-std=c99", "-fsyntax-only", "-Werror",
                        "-Wshift-overflow", "-Wshift-count-overflow", "-Wconstant-conversion", "-Wtautological-compare",
                        "-Wno-unknown-attributes",   # clang 14 does not know avr-libc's __progmem__
                        "-I/usr/lib/avr/include", str(ROOT / "csrc" / "edgebp.c")], capture_output=True, text=True)
    if "unknown target" in p.stderr or "No available targets" in p.stderr:
        pytest.skip("this clang has no AVR target")
    assert p.returncode == 0, p.stderr[-3000:]
