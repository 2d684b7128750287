// A1111's `shared.state` for `/sdapi/v1/progress`: what the running API job is doing, updated from the
// sampler's progress callback and read by the route without touching the job — so the answer never
// waits for the sampler. The live preview is kept as latents and turned into a PNG only when asked.
import { latentRgbPreviewer, previewPng } from '../pipelines/preview.js';
import type { Progress } from '../pipelines/sample.js';

const preview = latentRgbPreviewer();

export interface ProgressAnswer {
  progress: number;
  eta_relative: number;
  state: {
    skipped: boolean; interrupted: boolean; stopping_generation: boolean; job: string; job_count: number;
    job_timestamp: string; job_no: number; sampling_step: number; sampling_steps: number;
  };
  current_image: string | null;
  textinfo: string | null;
}

/** `YYYYmmddHHMMSS` in local time, as A1111 stamps jobs. */
export function jobTimestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export class ProgressState {
  job = '';
  jobCount = 0;
  jobNo = 0;
  samplingStep = 0;
  samplingSteps = 0;
  timestamp = '0';
  skipped = false;
  interrupted = false;
  private started = 0;
  private latest: { step: number; latents: Float64Array; shape: readonly [number, number, number, number] } | undefined;
  private rendered: { step: number; b64: string } | undefined;

  begin(job: string, jobCount: number): void {
    this.job = job;
    this.jobCount = jobCount;
    this.jobNo = 0;
    this.samplingStep = 0;
    this.samplingSteps = 0;
    this.skipped = false;
    this.interrupted = false;
    this.timestamp = jobTimestamp();
    this.started = Date.now();
    this.latest = undefined;
    this.rendered = undefined;
  }

  /** Called on every sampler step; keeps a copy of the first image's prediction for previews. */
  step(p: Progress): void {
    this.samplingStep = p.step;
    this.samplingSteps = p.total;
    if (p.denoised && p.shape) {
      const [, c, h, w] = p.shape;
      this.latest = { step: this.jobNo * 100_000 + p.step, latents: p.denoised.slice(0, c * h * w), shape: [1, c, h, w] };
    }
  }

  nextJob(jobNo: number): void {
    this.jobNo = jobNo;
    this.samplingStep = 0;
    this.skipped = false;
  }

  end(): void {
    this.job = '';
    this.jobCount = 0;
    this.jobNo = 0;
    this.samplingStep = 0;
    this.samplingSteps = 0;
    this.latest = undefined;
    this.rendered = undefined;
  }

  /** The `/progress` answer; `busyElsewhere` reports a ComfyUI prompt running as one job. */
  async answer(skipCurrentImage: boolean, busyElsewhere = false): Promise<ProgressAnswer> {
    const jobCount = this.jobCount || (busyElsewhere ? 1 : 0);
    let progress = 0;
    let eta = 0;
    if (this.jobCount > 0) {
      progress = 0.01 + this.jobNo / this.jobCount + (this.samplingSteps ? this.samplingStep / this.samplingSteps / this.jobCount : 0);
      progress = Math.min(progress, 1);
      const elapsed = (Date.now() - this.started) / 1000;
      eta = elapsed / progress - elapsed;
    }
    let image: string | null = null;
    const latest = this.latest;
    if (!skipCurrentImage && latest) {
      if (this.rendered?.step !== latest.step) {
        const [rgb] = await preview(latest.latents, latest.shape);
        this.rendered = { step: latest.step, b64: (await previewPng(rgb)).toString('base64') };
      }
      image = this.rendered.b64;
    }
    return {
      progress, eta_relative: eta,
      state: {
        skipped: this.skipped, interrupted: this.interrupted, stopping_generation: false, job: this.job, job_count: jobCount,
        job_timestamp: this.timestamp, job_no: this.jobNo, sampling_step: this.samplingStep, sampling_steps: this.samplingSteps,
      },
      current_image: image, textinfo: null,
    };
  }
}
