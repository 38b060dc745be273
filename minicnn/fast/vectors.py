"""The few inner loops written in LLVM's own vectors: the products' register tiles and the convolution's row copies.

Twins: ``matmul_scatter_add`` in ``tests/fast_twins.py`` (the product the tiles make up) and the plain
definitions of the spread and the output reorder (``fast/conv.py``'s scalar paths, checked against each
other in the tests).

Why not Numba loops. Numba turns Python loops into LLVM IR and LLVM vectorises what it can prove safe and
profitable. Three kinds of loop it did not make fast here:

- **Products that keep their sums in registers.** Numba's loops kept their sums in a buffer that every pass
  loaded and stored, and no way of writing the loop in Python made LLVM keep them in registers. ``tile`` holds
  a 6 × 2 block of vectors of sums as LLVM values for the whole of K.
- **Copies of short runs.** The spread copies runs of OW = 5–28 numbers; a loop that short never reaches
  LLVM's vector body (it wants 32 or more iterations) and runs one number at a time. ``copy_runs`` moves a
  run of up to L numbers with one masked load and one plain store.
- **Stride-2 reads.** Reading every other number of a row is a gather, which LLVM does not vectorise for this
  CPU. ``split_rows`` loads whole rows and splits even from odd columns with a fixed shuffle.

How they are emitted: each function below is a Numba ``intrinsic``, a Python function that writes LLVM IR into
the kernel being compiled. The first call site defines the helper as an internal function of that kernel's
module (``llvmlite.ir``), so it is optimised with the kernel and cached with it on disk; nothing is compiled at
import. Arrays go in as addresses (``array.ctypes.data``) and ``number``, any number of the arrays' dtype, says
which dtype they hold. Vectors are as wide as the CPU's (``VECTOR_BYTES``): L = 16 float32 (8 float64) with
AVX-512, 8 (4) with AVX2: written wider than the CPU's, LLVM splits each vector in two and the tiles' sums no
longer fit its registers. Sums are taken in the same order whatever the width, so results do not depend on it.
Under ``NUMBA_DISABLE_JIT=1`` no Python can run this code, and the fast engine does not load.
"""
import os

from llvmlite import binding as llvm, ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic

I1, I32, I64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)

def _vector_bytes():
    """64 (512-bit vectors) where the kernels are compiled for AVX-512, else 32 (256 bits: AVX2): the features
    Numba compiles for, ``NUMBA_CPU_FEATURES`` if set, else the host's. Numba's cache keys compiled code on
    the CPU too, so a cache filled on one kind of CPU is not run on the other."""
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else llvm.get_host_cpu_features().flatten()
    return 64 if "+avx512f" in features.split(",") else 32


#: Bytes of a vector: 64 with AVX-512 (32 vector registers), 32 without (16 registers).
#: ``MINICNN_VECTOR_BYTES`` (32 or 64) overrides it, for the tests that run one CPU's code on the other (LLVM
#: splits or joins vectors: same results, other speed); Numba's cache does not know of it, so use it with a
#: ``NUMBA_CACHE_DIR`` of its own.
VECTOR_BYTES = int(os.environ.get("MINICNN_VECTOR_BYTES") or _vector_bytes())
if VECTOR_BYTES not in (32, 64):
    raise ValueError(f"MINICNN_VECTOR_BYTES: expected 32 or 64, got {VECTOR_BYTES}")

#: The tiles' shapes, (rows, vectors of columns), chosen so that their sums, the vectors of b's row and one
#: broadcast fit the registers: ``tile`` serves any M; ``tile_exact`` M a multiple of its rows (16 output
#: channels, where 6-row tiles computed 18 rows). With 16 registers (AVX2) 6 × 2, 12 sums, alone: an 8-row
#: tile spilled its sums to the stack every step (8 × 2; 8 × 1 ran 1.2–1.4x slower for M = 16), and 4 × 3
#: was within 5% of 6 × 2 but added 4 s to a cold start (``EXACT`` False: ``tile_exact`` is never called).
(ROWS, VECTORS), (EXACT_ROWS, EXACT_VECTORS) = ((6, 2), (8, 2)) if VECTOR_BYTES == 64 else ((6, 2), (6, 2))
EXACT = (EXACT_ROWS, EXACT_VECTORS) != (ROWS, VECTORS)

#: What the tile does with each sum it has computed (shared with ``matmul.py``).
ADD, STORE, STORE_RELU = 0, 1, 2


class VectorCode:
    """The vector types, LLVM intrinsics and small idioms the functions below share, for one module and dtype."""

    def __init__(self, module, real):
        self.module, self.real = module, real
        self.tag = "f32" if isinstance(real, ir.FloatType) else "f64"
        self.lanes = VECTOR_BYTES // (4 if self.tag == "f32" else 8)
        self.vec = ir.VectorType(real, self.lanes)
        self.index_vec = ir.VectorType(I64, self.lanes)
        self.mask_vec = ir.VectorType(I1, self.lanes)
        self.ptr, self.vptr = real.as_pointer(), self.vec.as_pointer()
        self.align = ir.Constant(I32, 4 if self.tag == "f32" else 8)
        suffix = f"v{self.lanes}{self.tag}"
        pointer = "p0" if llvm.llvm_version_info >= (15,) else f"p0{suffix}"   # opaque pointers since LLVM 15
        self.fma = self.declare(f"llvm.fma.{suffix}", self.vec, [self.vec] * 3)
        self.masked_load = self.declare(f"llvm.masked.load.{suffix}.{pointer}", self.vec,
                                        [self.vptr, I32, self.mask_vec, self.vec])
        self.masked_store = self.declare(f"llvm.masked.store.{suffix}.{pointer}", ir.VoidType(),
                                         [self.vec, self.vptr, I32, self.mask_vec])

    def declare(self, name, returns, arguments):
        """The function ``name`` of the module, declared if it is not there yet."""
        return self.module.globals.get(name) or ir.Function(self.module, ir.FunctionType(returns, arguments), name)

    def define(self, name, arguments):
        """(function, builder at its entry) for a new internal void function, or (function, None) if defined."""
        name = f"minicnn_{name}_{self.tag}"
        if name in self.module.globals:
            return self.module.globals[name], None
        function = ir.Function(self.module, ir.FunctionType(ir.VoidType(), arguments), name)
        function.linkage = "internal"
        return function, ir.IRBuilder(function.append_basic_block("entry"))

    def broadcast(self, b, value, vector_type=None):
        """A vector with ``value`` in every lane."""
        vector_type = vector_type or self.vec
        one = b.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(I32, 0))
        return b.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined),
                                ir.Constant(ir.VectorType(I32, vector_type.count), [0] * vector_type.count))

    def lanes_within(self, b, first, low, high):
        """The mask of lanes l with low ≤ first + l < high."""
        index = b.add(ir.Constant(self.index_vec, list(range(self.lanes))), self.broadcast(b, first, self.index_vec))
        return b.and_(b.icmp_signed(">=", index, self.broadcast(b, low, self.index_vec)),
                      b.icmp_signed("<", index, self.broadcast(b, high, self.index_vec)))

    def load(self, b, base, index, mask=None):
        """The vector at base[index:], only the lanes of ``mask`` read (the others zero) when given."""
        pointer = b.bitcast(b.gep(base, [index]), self.vptr)
        if mask is None:
            value = b.load(pointer)
            value.align = self.align.constant
            return value
        return b.call(self.masked_load, [pointer, self.align, mask, ir.Constant(self.vec, None)])

    def store(self, b, value, base, index, mask=None):
        """base[index:] = value, only the lanes of ``mask`` written when given."""
        pointer = b.bitcast(b.gep(base, [index]), self.vptr)
        if mask is None:
            b.store(value, pointer).align = self.align.constant
        else:
            b.call(self.masked_store, [value, pointer, self.align, mask])


def _codegen(define, kinds):
    """The lowering of an intrinsic that calls the function ``define(VectorCode)`` builds; its arguments after
    ``number`` are passed on, those of kind "real*" or "i64*" (addresses, ints) turned into pointers."""
    def codegen(context, builder, signature, values):
        code = VectorCode(builder.module, context.get_value_type(signature.args[0]))
        pointer = {"real*": code.ptr, "i64*": I64.as_pointer()}
        arguments = []
        for kind, value, numba_type in zip(kinds, values[1:], signature.args[1:]):
            value = context.cast(builder, value, numba_type, types.int64)      # whatever int the caller had
            arguments.append(builder.inttoptr(value, pointer[kind]) if kind in pointer else value)
        builder.call(define(code), arguments)
        return context.get_dummy_value()
    return codegen


# --- the products' register tile ----------------------------------------------------------------------------

def define_tile(code, vectors, height=ROWS):
    """void tile(real* a, i64 lda, i64 rows, i64 K, i64* window, real* src, real* t, i64* target_window,
                 real* initial, i64 mode, i64 count)

    For r < ``rows`` (at most ``height``: ``ROWS``, or ``EXACT_ROWS`` for ``tile_exact``) and the tile's
    ``vectors`` · L columns (L = ``code.lanes``)::

        t[target_window[r] + q] (mode)= initial[r] + Σ_k a[r·lda + k] · src[window[k] + q]

    ``a`` points at the tile's first row of a, ``src`` and ``t`` at its first column in the source and the
    target, ``target_window`` and ``initial`` at its first row's entries. Rows past ``rows`` repeat the last
    and are not written. The sums are ``height`` × ``vectors`` vectors that stay in registers for the whole
    of K: each k loads ``vectors`` vectors of b's row k and ``height`` numbers of a (broadcast), and does
    ``height`` · ``vectors`` fused multiply-adds. With ``vectors`` = 1 the one vector is masked to its first
    ``count`` columns (the last, narrow tile of a row). ``mode``: ADD, STORE, or STORE_RELU (max(·, 0), NaN
    kept as in ``activation.py``).

    Its machine loop is what a BLAS kernel's is: per k one load of window[k], ``vectors`` vector loads,
    ``height`` broadcasts and ``height`` · ``vectors`` multiply-adds, nothing stored. Why 6 × 2 tiles, and
    what they reach: ``docs/performance.md`` (fast/vectors.py).
    """
    function, b = code.define(f"tile_{height}x{vectors}", [code.ptr, I64, I64, I64, I64.as_pointer(), code.ptr,
                                                           code.ptr, I64.as_pointer(), code.ptr, I64, I64])
    if b is None:
        return function
    a, lda, rows, K, window, src, t, target_window, initial, mode, count = function.args
    mask = code.lanes_within(b, ir.Constant(I64, 0), ir.Constant(I64, 0), count) if vectors == 1 else None

    # Each row's a, target and start; rows past ``rows`` repeat the last one.
    last = b.sub(rows, ir.Constant(I64, 1))
    a_rows, t_rows, sums = [], [], []
    for r in range(height):
        row = b.select(b.icmp_signed("<", ir.Constant(I64, r), rows), ir.Constant(I64, r), last)
        a_rows.append(b.gep(a, [b.mul(row, lda)]))
        t_rows.append(b.gep(t, [b.load(b.gep(target_window, [row]))]))
        start = code.broadcast(b, b.load(b.gep(initial, [row])))
        sums.append([cgutils.alloca_once_value(b, start) for _ in range(vectors)])   # registers, after mem2reg

    with cgutils.for_range(b, K) as loop:                 # sums[r][v] += a[r, k] · src[window[k] + v·L:][:L]
        k = loop.index
        b_row = b.gep(src, [b.load(b.gep(window, [k]))])
        b_vectors = [code.load(b, b_row, ir.Constant(I64, v * code.lanes), mask) for v in range(vectors)]
        for r in range(height):
            a_rk = code.broadcast(b, b.load(b.gep(a_rows[r], [k])))
            for v in range(vectors):
                b.store(b.call(code.fma, [a_rk, b_vectors[v], b.load(sums[r][v])]), sums[r][v])

    zero = ir.Constant(code.vec, None)
    is_add = b.icmp_signed("==", mode, ir.Constant(I64, ADD))
    is_store = b.icmp_signed("==", mode, ir.Constant(I64, STORE))
    for r in range(height):
        with b.if_then(b.icmp_signed(">", rows, ir.Constant(I64, r))):
            for v in range(vectors):
                column = ir.Constant(I64, v * code.lanes)
                value = b.load(sums[r][v])
                relu = b.select(b.fcmp_ordered("<=", value, zero), zero, value)     # NaN <= 0 is false: NaN kept
                stored = b.select(is_store, value, relu)
                with b.if_else(is_add) as (then, otherwise):
                    with then:
                        code.store(b, b.fadd(code.load(b, t_rows[r], column, mask), value), t_rows[r], column, mask)
                    with otherwise:
                        code.store(b, stored, t_rows[r], column, mask)
    b.ret_void()
    return function


_TILE_ARGUMENTS = ("real*", "i64", "i64", "i64", "i64*", "real*", "real*", "i64*", "real*", "i64", "i64")


@intrinsic
def tile(typingctx, number, a, lda, rows, K, window, src, t, target_window, initial, mode, count):
    """The full tile: VECTORS vectors of columns (``count`` unused). Addresses for a, window, src, t,
    target_window and initial; ``number``: any number of the arrays' dtype."""
    signature = types.void(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)
    return signature, _codegen(lambda code: define_tile(code, VECTORS), _TILE_ARGUMENTS)


@intrinsic
def tile_exact(typingctx, number, a, lda, rows, K, window, src, t, target_window, initial, mode, count):
    """``tile`` with ``EXACT_ROWS`` rows and ``EXACT_VECTORS`` vectors: for products whose rows are a multiple
    of ``EXACT_ROWS`` (16 output channels: 6-row tiles computed 18 rows for 16)."""
    signature = types.void(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)
    return signature, _codegen(lambda code: define_tile(code, EXACT_VECTORS, EXACT_ROWS), _TILE_ARGUMENTS)


@intrinsic
def tile_exact_masked(typingctx, number, a, lda, rows, K, window, src, t, target_window, initial, mode, count):
    """``tile_masked`` with ``EXACT_ROWS`` rows."""
    signature = types.void(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)
    return signature, _codegen(lambda code: define_tile(code, 1, EXACT_ROWS), _TILE_ARGUMENTS)


@intrinsic
def tile_masked(typingctx, number, a, lda, rows, K, window, src, t, target_window, initial, mode, count):
    """The narrow tile at the end of a row: one vector, its first ``count`` columns."""
    signature = types.void(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)
    return signature, _codegen(lambda code: define_tile(code, 1), _TILE_ARGUMENTS)


# --- moving rows --------------------------------------------------------------------------------------------

def define_copy_runs(code):
    """void copy_runs(real* dst, i64 dst_outer, i64 dst_inner, real* src, i64 src_outer, i64 src_inner,
                      i64 outer, i64 inner, i64 length)

    dst[a·dst_outer + i·dst_inner + c] = src[a·src_outer + i·src_inner + c] for a < outer, i < inner, c < length:
    outer × inner runs of ``length`` numbers, copied in that order (a, then i; run r = a·inner + i), L numbers
    at a time. Every load is masked to its run. A run's last, partial vector is stored whole, up to L − 1
    numbers past the run, wherever those still lie within the (outer·inner − r)·length numbers that runs r
    and after fill; only the runs within L numbers of the end store masked. So **the caller passes runs that follow
    one another in dst in the order they are copied** (dst_inner = length, dst_outer = inner · length), or
    leaves gaps between them that it writes afterwards.
    Why: a masked store is microcoded on some CPUs (AMD's Zen 2 and 3), several times the cost of a plain store;
    masked loads are cheap everywhere."""
    function, b = code.define("copy_runs", [code.ptr, I64, I64, code.ptr, I64, I64, I64, I64, I64])
    if b is None:
        return function
    dst, dst_outer, dst_inner, src, src_outer, src_inner, outer, inner, length = function.args
    zero, L = ir.Constant(I64, 0), ir.Constant(I64, code.lanes)
    whole = b.mul(b.sdiv(length, L), L)                          # columns in whole vectors
    tail = code.lanes_within(b, whole, zero, length)             # the lanes of the rest, made once
    has_tail = b.icmp_signed("<", whole, length)
    runs = b.mul(outer, inner)
    with cgutils.for_range(b, outer) as run_a:
        src_a, dst_a = b.mul(run_a.index, src_outer), b.mul(run_a.index, dst_outer)
        with cgutils.for_range(b, inner) as run_i:
            src_i = b.add(src_a, b.mul(run_i.index, src_inner))
            dst_i = b.add(dst_a, b.mul(run_i.index, dst_inner))
            with cgutils.for_range_slice(b, zero, whole, L, inc=True) as (c, _):
                code.store(b, code.load(b, src, b.add(src_i, c)), dst, b.add(dst_i, c))
            with b.if_then(has_tail):
                value = code.load(b, src, b.add(src_i, whole), tail)
                # The runs from this one on fill (runs − r)·length numbers: a whole vector stored at this
                # run's tail stays inside them if that leaves at least L numbers from the tail on.
                left = b.mul(b.sub(runs, b.add(b.mul(run_a.index, inner), run_i.index)), length)
                inside = b.icmp_signed(">=", b.sub(left, whole), L)
                with b.if_else(inside) as (then, otherwise):
                    with then:
                        code.store(b, value, dst, b.add(dst_i, whole))
                    with otherwise:
                        code.store(b, value, dst, b.add(dst_i, whole), tail)
    b.ret_void()
    return function


def define_split_rows(code):
    """void split_rows(real* dst, i64 dst_stride, i64 width, real* src, i64 src_stride, i64 rows, i64 W, i64 P,
                       i64 S)

    For each of ``rows`` rows of W numbers (row i at src + i·src_stride), the row padded with P zeros on each
    side, xp[c] = src[c − P], split into its S phases (S = 1 or 2), ``width`` numbers each::

        dst[i·dst_stride + pw·width + w'] = xp[S·w' + pw]        (zero past the padded row)

    S = 1 is the padded row itself. For S = 2 two vectors of the row are loaded (lanes off the row masked, so
    the padding reads nothing) and a fixed shuffle takes the even and the odd lanes out of them. ``width`` is
    a multiple of L (the caller's scratch is that wide), so that every store is a whole vector: masked stores
    are slow on AMD's Zen 2 and 3 (``define_copy_runs``)."""
    function, b = code.define("split_rows", [code.ptr, I64, I64, code.ptr, I64, I64, I64, I64, I64])
    if b is None:
        return function
    dst, dst_stride, width, src, src_stride, rows, W, P, S = function.args
    L = code.lanes
    is_two = b.icmp_signed("==", S, ir.Constant(I64, 2))
    two = code.broadcast(b, is_two, code.mask_vec)
    even = ir.Constant(ir.VectorType(I32, L), [2 * lane for lane in range(L)])
    odd = ir.Constant(ir.VectorType(I32, L), [2 * lane + 1 for lane in range(L)])
    with cgutils.for_range_slice(b, ir.Constant(I64, 0), width, ir.Constant(I64, L), inc=True) as (c, _):
        first = b.mul(S, c)                                           # the chunk's first padded column
        second = b.add(first, ir.Constant(I64, L))
        on_row = (code.lanes_within(b, first, P, b.add(P, W)),
                  b.and_(code.lanes_within(b, second, P, b.add(P, W)), two))
        with cgutils.for_range(b, rows) as row:
            row_src = b.sub(b.mul(row.index, src_stride), P)        # where padded column 0 would be
            row_dst = b.add(b.mul(row.index, dst_stride), c)
            low = code.load(b, src, b.add(row_src, first), on_row[0])
            high = code.load(b, src, b.add(row_src, second), on_row[1])
            code.store(b, b.select(two, b.shuffle_vector(low, high, even), low), dst, row_dst)
            with b.if_then(is_two):
                code.store(b, b.shuffle_vector(low, high, odd), dst, b.add(row_dst, width))
    b.ret_void()
    return function


@intrinsic
def copy_runs(typingctx, number, dst, dst_outer, dst_inner, src, src_outer, src_inner, outer, inner, length):
    """``define_copy_runs``; dst and src are addresses."""
    signature = types.void(number, dst, dst_outer, dst_inner, src, src_outer, src_inner, outer, inner, length)
    return signature, _codegen(define_copy_runs, ("real*", "i64", "i64", "real*", "i64", "i64", "i64", "i64", "i64"))


@intrinsic
def split_rows(typingctx, number, dst, dst_stride, width, src, src_stride, rows, W, P, S):
    """``define_split_rows``; dst and src are addresses."""
    signature = types.void(number, dst, dst_stride, width, src, src_stride, rows, W, P, S)
    return signature, _codegen(define_split_rows, ("real*", "i64", "i64", "real*", "i64", "i64", "i64", "i64", "i64"))


#: Whether the functions here can run: not under ``NUMBA_DISABLE_JIT=1``, where no Python runs LLVM code.
AVAILABLE = not config.DISABLE_JIT
