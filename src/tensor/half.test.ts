import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ToFloat, f8e4m3ToFloat, f8e5m2ToFloat, floatToBf16, floatToHalf, halfToFloat,
} from './half.js';
import { Tensor, fromStrided } from './tensor.js';

test('half round-trips every finite f16 bit pattern', () => {
  for (let h = 0; h < 0x10000; h++) {
    const e = (h >> 10) & 0x1f;
    if (e === 31) continue;
    const back = floatToHalf(halfToFloat(h));
    // -0 and +0 both survive; every other pattern maps back to itself.
    assert.equal(back, h, `pattern ${h.toString(16)}`);
  }
});

test('half rounding is to nearest even and saturates to infinity', () => {
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie goes to even (down)
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // tie goes to even (up)
  assert.equal(floatToHalf(65520), 0x7c00);
  assert.equal(floatToHalf(2 ** -25), 0); // tie at the smallest subnormal rounds to 0
  assert.equal(floatToHalf(2 ** -24), 1);
  assert.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))));
});

test('bf16 and fp8 decode known values', () => {
  assert.equal(bf16ToFloat(0x3f80), 1);
  assert.equal(bf16ToFloat(floatToBf16(3.140625)), 3.140625);
  assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80); // tie to even
  assert.equal(f8e4m3ToFloat(0x38), 1);
  assert.equal(f8e4m3ToFloat(0x7e), 448);
  assert.ok(Number.isNaN(f8e4m3ToFloat(0x7f)));
  assert.equal(f8e4m3ToFloat(0x01), 2 ** -9);
  assert.equal(f8e5m2ToFloat(0x3c), 1);
  assert.equal(f8e5m2ToFloat(0x7b), 57344);
  assert.equal(f8e5m2ToFloat(0x7c), Infinity);
});

test('fromStrided materialises a transposed view', () => {
  const storage = new Float32Array([0, 1, 2, 3, 4, 5, 6]);
  // a [3,2] view of a [2,3] matrix starting at element 1: transpose
  const t = fromStrided('f32', [3, 2], [1, 3], 1, new Uint8Array(storage.buffer));
  assert.deepEqual([...t.data as Float32Array], [1, 4, 2, 5, 3, 6]);
  assert.throws(() => fromStrided('f32', [3, 3], [1, 3], 1, new Uint8Array(storage.buffer)), /past its storage/);
});

test('Tensor checks data length and converts dtypes', () => {
  assert.throws(() => Tensor.f32([2, 2], [1, 2, 3]), /needs 4/);
  const t = Tensor.f32([3], [1, 0.5, -2]).to('f16');
  assert.equal(t.dtype, 'f16');
  assert.deepEqual([...t.toFloat32Array()], [1, 0.5, -2]);
});
