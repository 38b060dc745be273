"""A tile of sums held in vector registers: the inner kernel of the convolution's products, in LLVM's vectors.

Twin: ``matmul_scatter_add`` in ``minicnn/reference/matmul.py`` (the product this tile is one piece of).
What one call computes, for ROWS = 6 rows of a and the COLUMNS = 2 · L columns q0 … q0 + 2L − 1 of the result
(L numbers to a 512-bit vector: 16 float32 or 8 float64)::

    for r < rows:     out_r[q] (+)= initial[r] + Σ_k a[r, k] · src[window[k] + q]      for the tile's columns q

with out_r = t + target_window[r], written as ``mode`` says (ADD, STORE, or STORE_RELU: max(·, 0), NaN kept).
The 6 × 2 vectors of sums stay in registers for the whole of K. Each k loads two vectors of b's row k and six
numbers of a (each broadcast to a vector) and does 12 fused multiply-adds: more arithmetic per load than
any loop Numba gave us. A last tile narrower than 2L columns uses one vector and a mask (``count`` columns).

Why written in LLVM's own terms. Numba's loops reached 86–90 GFLOP/s per core in the products, while this
machine's cores do 115 GFLOP/s of 256-bit multiply-adds and 220 of 512-bit ones when nothing else is in the
way (a loop of nothing but multiply-adds, measured), and OpenBLAS reaches 153. The loops' sums lived in a
buffer that every pass loaded and stored (``matmul.py``), and no way of writing the loop in Python made LLVM
keep them in registers (scalar sums, a stack buffer: tried, slower). Here the sums are LLVM values of type
``<16 x float>``, so they live in registers by construction. Measured on one core against the loops it
replaces, in GFLOP/s: the strided second layer's block (16 × 150 times 150 × 400) 90 → 115, LeNet's second
layer (16 × 150 times 150 × 200) 80 → 118, its first (6 × 25 times 25 × 784) 55 → 99. Six rows: LeNet's
layers have 6 or 16 output channels and the input gradient's product 25, 150 or 400 rows; six rows of two
vectors keep 12 sums, 2 rows of b and a broadcast in 15 of the 32 vector registers.

How it is emitted: a Numba ``intrinsic`` is a Python function that writes LLVM IR into the kernel being
compiled. The first call site defines the tile as an internal function of that kernel's module (``llvmlite.
ir``), so it is optimised with the kernel and cached with it on disk; nothing is compiled at import. The
arrays go in as addresses (``array.ctypes.data``). On a CPU without AVX-512 LLVM splits each vector in two or
four: the same results, at that CPU's speed. Under ``NUMBA_DISABLE_JIT=1`` the product uses its plain
reference instead (``matmul.py``), since no Python runs this code.
"""
from llvmlite import binding as llvm, ir
from numba import types
from numba.extending import intrinsic

#: Rows of the result per tile, and vectors of columns per row.
ROWS, VECTORS = 6, 2

#: What the tile does with each sum it has computed (shared with ``matmul.py``).
ADD, STORE, STORE_RELU = 0, 1, 2


def define_tile(module, real, lanes, vectors):
    """The tile as an LLVM function in ``module`` (defined once per module, dtype and shape)::

        void tile(real* a, i64 lda, i64 rows, i64 K, i64* window, real* src, real* t, i64* target_window,
                  real* initial, i64 mode, i64 count)

    ``a`` points at row 0 of the tile's rows of a (row r at a + r·lda), ``src`` at column q0 of image n's
    source, ``t`` at column q0 of its target, ``target_window`` and ``initial`` at the tile's first row. Rows
    r ≥ ``rows`` repeat the last row and are not written. With ``vectors`` = 1 the one vector is masked to
    its first ``count`` columns (the last, narrow tile of a row); with 2 ``count`` is not read."""
    tag = "f32" if isinstance(real, ir.FloatType) else "f64"
    masked = vectors == 1
    name = f"minicnn_tile_{ROWS}x{vectors}x{lanes}{tag}"
    if name in module.globals:
        return module.globals[name]
    i1, i32, i64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
    vec = ir.VectorType(real, lanes)
    ptr, vptr, iptr = real.as_pointer(), vec.as_pointer(), i64.as_pointer()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, i64, i64, i64, iptr, ptr, ptr, iptr, ptr, i64, i64]),
                           name)
    function.linkage = "internal"
    a, lda, rows, K, window, src, t, target_window, initial, mode, count = function.args

    def declare(intrinsic_name, returns, arguments):
        return module.globals.get(intrinsic_name) or ir.Function(module, ir.FunctionType(returns, arguments),
                                                                 intrinsic_name)
    suffix = f"v{lanes}{tag}"
    fma = declare(f"llvm.fma.{suffix}", vec, [vec, vec, vec])
    align = 4 if tag == "f32" else 8

    entry, loop, done = (function.append_basic_block(label) for label in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    lane_indices = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)

    def broadcast(value, vector_type=vec):
        one = b.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(i32, 0))
        return b.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined), lane_indices)

    def load(pointer, v):
        p = b.bitcast(b.gep(pointer, [ir.Constant(i64, v * lanes)]), vptr)
        if masked:
            return b.call(masked_load, [p, ir.Constant(i32, align), mask, ir.Constant(vec, None)]), p
        value = b.load(p)
        value.align = align
        return value, p

    if masked:
        mask_type = ir.VectorType(i1, lanes)
        pointer = "p0" if llvm.llvm_version_info >= (15,) else f"p0{suffix}"     # opaque pointers since LLVM 15
        masked_load = declare(f"llvm.masked.load.{suffix}.{pointer}", vec, [vptr, i32, mask_type, vec])
        masked_store = declare(f"llvm.masked.store.{suffix}.{pointer}", ir.VoidType(), [vec, vptr, i32, mask_type])
        index_type = ir.VectorType(i64, lanes)
        mask = b.icmp_unsigned("<", ir.Constant(index_type, list(range(lanes))), broadcast(count, index_type))

    # Each row's a, target and starting value; rows past ``rows`` repeat the last one.
    last = b.sub(rows, ir.Constant(i64, 1))
    a_rows, out_rows, starts = [], [], []
    for r in range(ROWS):
        row = b.select(b.icmp_signed("<", ir.Constant(i64, r), rows), ir.Constant(i64, r), last)
        a_rows.append(b.gep(a, [b.mul(row, lda)]))
        out_rows.append(b.gep(t, [b.load(b.gep(target_window, [row]))]))
        starts.append(broadcast(b.load(b.gep(initial, [row]))))
    b.cbranch(b.icmp_signed(">", K, ir.Constant(i64, 0)), loop, done)

    # for k < K: sums[r][v] += a[r, k] · src[window[k] + v·L : + L]
    b = ir.IRBuilder(loop)
    k = b.phi(i64, "k")
    k.add_incoming(ir.Constant(i64, 0), entry)
    sums = [[b.phi(vec, f"sum{r}_{v}") for v in range(vectors)] for r in range(ROWS)]
    b_row = b.gep(src, [b.load(b.gep(window, [k]))])
    b_vectors = [load(b_row, v)[0] for v in range(vectors)]
    updated = []
    for r in range(ROWS):
        a_rk = broadcast(b.load(b.gep(a_rows[r], [k])))
        updated.append([b.call(fma, [a_rk, b_vectors[v], sums[r][v]]) for v in range(vectors)])
    k_next = b.add(k, ir.Constant(i64, 1))
    k.add_incoming(k_next, loop)
    for r in range(ROWS):
        for v in range(vectors):
            sums[r][v].add_incoming(starts[r], entry)
            sums[r][v].add_incoming(updated[r][v], loop)
    b.cbranch(b.icmp_signed("<", k_next, K), loop, done)

    # Write each real row: added to the target, stored, or stored through max(·, 0).
    b = ir.IRBuilder(done)
    final = []
    for r in range(ROWS):                                # every phi first, at the top of the block
        final.append([])
        for v in range(vectors):
            value = b.phi(vec)
            value.add_incoming(starts[r], entry)
            value.add_incoming(updated[r][v], loop)
            final[r].append(value)
    zero = ir.Constant(vec, None)
    is_add = b.icmp_signed("==", mode, ir.Constant(i64, ADD))
    is_store = b.icmp_signed("==", mode, ir.Constant(i64, STORE))
    for r in range(ROWS):
        with b.if_then(b.icmp_signed(">", rows, ir.Constant(i64, r))):
            for v in range(vectors):
                value = final[r][v]
                old, p = load(out_rows[r], v)
                relu = b.select(b.fcmp_ordered("<=", value, zero), zero, value)     # NaN <= 0 is false: NaN kept
                result = b.select(is_add, b.fadd(old, value), b.select(is_store, value, relu))
                if masked:
                    b.call(masked_store, [result, p, ir.Constant(i32, align), mask])
                else:
                    b.store(result, p).align = align
    b.ret_void()
    return function


def _tile_intrinsic(vectors):
    @intrinsic
    def tile(typingctx, number, a, lda, rows, K, window, src, t, target_window, initial, mode, count):
        """tile(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count), every pointer
        an integer address; ``number``, any number of the arrays' dtype, only tells which dtype they hold."""
        signature = types.void(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)

        def codegen(context, builder, sig, args):
            real = context.get_value_type(number)
            lanes = 64 // context.get_abi_sizeof(real)
            function = define_tile(builder.module, real, lanes, vectors)
            ptr, iptr = real.as_pointer(), ir.IntType(64).as_pointer()
            _, a, lda, rows, K, window, src, t, target_window, initial, mode, count = args
            builder.call(function, [builder.inttoptr(a, ptr), lda, rows, K, builder.inttoptr(window, iptr),
                                    builder.inttoptr(src, ptr), builder.inttoptr(t, ptr),
                                    builder.inttoptr(target_window, iptr), builder.inttoptr(initial, ptr), mode, count])
            return context.get_dummy_value()
        return signature, codegen
    return tile


#: The full tile (2 vectors of columns) and the masked narrow one (1 vector, ``count`` columns).
tile = _tile_intrinsic(VECTORS)
tile_masked = _tile_intrinsic(1)
