// The inpaint mask, painted over the init image on a canvas: brush size, eraser, invert, blur. The
// strokes live on their own canvas; export scales them to the generation size and applies invert and
// blur with the canvas's own filters.
import { forwardRef, useImperativeHandle, useRef, useState } from 'react';

export interface MaskHandle { exportMask(width: number, height: number): Promise<Blob>; isEmpty(): boolean }

const SIZE = 512;

export const MaskCanvas = forwardRef<MaskHandle, { image: string }>(function MaskCanvas({ image }, ref) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [brush, setBrush] = useState(32);
  const [eraser, setEraser] = useState(false);
  const [invert, setInvert] = useState(false);
  const [blur, setBlur] = useState(4);
  const painted = useRef(false);
  const last = useRef<[number, number] | null>(null);

  const point = (e: React.PointerEvent<HTMLCanvasElement>): [number, number] => {
    const r = e.currentTarget.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * SIZE, ((e.clientY - r.top) / r.height) * SIZE];
  };
  const stroke = (to: [number, number]) => {
    const ctx = canvas.current!.getContext('2d')!;
    ctx.globalCompositeOperation = eraser ? 'destination-out' : 'source-over';
    ctx.strokeStyle = 'rgba(255,255,255,1)';
    ctx.lineWidth = brush;
    ctx.lineCap = 'round';
    ctx.beginPath();
    const from = last.current ?? to;
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    last.current = to;
    painted.current = true;
  };

  useImperativeHandle(ref, () => ({
    isEmpty: () => !painted.current && !invert,
    exportMask: (width, height) => {
      const out = document.createElement('canvas');
      out.width = width;
      out.height = height;
      const ctx = out.getContext('2d')!;
      ctx.fillStyle = invert ? '#fff' : '#000';
      ctx.fillRect(0, 0, width, height);
      if (invert) ctx.globalCompositeOperation = 'destination-out';
      ctx.filter = blur > 0 ? `blur(${blur}px)` : 'none';
      ctx.drawImage(canvas.current!, 0, 0, width, height);
      if (invert) {
        // the erased area is transparent now: put black under it
        ctx.globalCompositeOperation = 'destination-over';
        ctx.filter = 'none';
        ctx.fillStyle = '#000';
        ctx.fillRect(0, 0, width, height);
      }
      return new Promise((resolve, reject) => out.toBlob((b) => (b ? resolve(b) : reject(new Error('mask export failed'))), 'image/png'));
    },
  }), [invert, blur]);

  return (
    <div className="mask">
      <div className="mask-stage" style={{ backgroundImage: `url(${image})` }}>
        <canvas ref={canvas} width={SIZE} height={SIZE} aria-label="Mask canvas" className={invert ? 'inverted' : ''}
          onPointerDown={(e) => { e.currentTarget.setPointerCapture(e.pointerId); last.current = null; stroke(point(e)); }}
          onPointerMove={(e) => { if (e.buttons & 1) stroke(point(e)); }}
          onPointerUp={() => { last.current = null; }} />
      </div>
      <div className="row">
        <label>Brush size <input type="range" min={2} max={128} value={brush} onChange={(e) => setBrush(Number(e.target.value))} /></label>
        <label><input type="checkbox" checked={eraser} onChange={(e) => setEraser(e.target.checked)} /> Eraser</label>
        <label><input type="checkbox" checked={invert} onChange={(e) => setInvert(e.target.checked)} /> Invert mask</label>
        <label>Mask blur <input type="number" min={0} max={64} value={blur} onChange={(e) => setBlur(Number(e.target.value))} /></label>
        <button type="button" onClick={() => { canvas.current!.getContext('2d')!.clearRect(0, 0, SIZE, SIZE); painted.current = false; }}>Clear mask</button>
      </div>
    </div>
  );
});
