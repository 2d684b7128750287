// End to end in real headless Chromium (playwright-core, the system browser) against the server on
// the real engine and the tiny SD1 checkpoint: Generate with progress, results and infotext, the
// gallery, inpainting with a painted mask, a workflow loaded and queued, a PNG dropped back into the
// editor, and the prompt library. Without a browser the suite is one skipped line, except under
// LATENTKIT_REQUIRE_BROWSER=1 (CI). LATENTKIT_SCREENSHOTS=1 also writes docs/screenshots/*.png.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WEB_ROOT } from '../../src/server/web-ui.js';
import { NO_REF, startRealServer, TINY_SD1, txt2img } from '../server/real-engine.js';
import { refTests } from '../ref.js';

const CHROMIUM = process.env.LATENTKIT_CHROMIUM || '/usr/bin/chromium';
const noBrowser = existsSync(CHROMIUM) ? undefined : `no browser at ${CHROMIUM} (apt-get install chromium, or set LATENTKIT_CHROMIUM)`;
const noBuild = existsSync(join(WEB_ROOT, 'index.html')) ? undefined : `web UI not built at ${WEB_ROOT} (npm run build:web)`;
const why = noBrowser ?? noBuild;
const SHOTS = process.env.LATENTKIT_SCREENSHOTS === '1';

let suite: typeof test;
if (why && process.env.LATENTKIT_REQUIRE_BROWSER === '1') suite = ((name: string) => test(name, () => { throw new Error(`LATENTKIT_REQUIRE_BROWSER=1: ${why}`); })) as unknown as typeof test;
else if (why) suite = ((name: string) => test(name, { skip: why }, () => undefined)) as unknown as typeof test;
else suite = refTests('web UI in Chromium', [TINY_SD1]);
void NO_REF;

suite('web UI in Chromium: generate, gallery, inpaint, workflow, PNG drop, prompt library', { timeout: 180_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const s = await startRealServer({ previewMethod: 'latent2rgb' });
  const profile = await mkdtemp(join(tmpdir(), 'lk-chromium-'));
  const shots = join(process.cwd(), 'docs', 'screenshots');
  if (SHOTS) await mkdir(shots, { recursive: true });
  let browser: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    // a fresh profile folder each run (playwright passes it as --user-data-dir)
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 720 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    const page = browser.pages()[0] ?? await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(s.url);
    const prompt = 'a red fox in the snow';

    // Generate: progress seen, result image with its prompt as alt, infotext with the seed
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill(prompt);
    await page.getByRole('textbox', { name: 'Negative prompt' }).fill('blurry');
    await page.getByTestId('token-count').first().filter({ hasText: /^\d+\/75$|^\?\/75$/ }).waitFor();
    for (const [label, v] of [['Steps', '3'], ['Width', '64'], ['Height', '64'], ['Seed', '4242']]) await page.getByLabel(label, { exact: true }).fill(v);
    // page scripts as strings: this file is type-checked for Node, without the DOM library
    await page.evaluate(`window.sawProgress = false;
      new MutationObserver(() => { if (document.querySelector('progress[aria-label=Progress]')) window.sawProgress = true; })
        .observe(document.body, { subtree: true, childList: true });`);
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).press('Control+Enter');
    await page.getByRole('img', { name: prompt }).first().waitFor({ timeout: 60_000 });
    assert.ok(await page.evaluate('window.sawProgress'), 'progress shown');
    assert.match(await page.locator('.infotext').first().innerText(), /Seed: 4242/);
    if (SHOTS) await page.screenshot({ path: join(shots, 'generate-1280.png') });

    // Gallery: the image is there, from the SQLite history
    await page.getByRole('tab', { name: 'Gallery' }).click();
    await page.getByRole('list', { name: 'Gallery images' }).getByRole('img', { name: prompt }).first().waitFor();
    if (SHOTS) await page.screenshot({ path: join(shots, 'gallery-1280.png') });

    // Inpaint: send the result to inpaint, paint a mask, generate
    await page.getByRole('tab', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Send to inpaint' }).first().click();
    const canvas = page.getByLabel('Mask canvas');
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.6, { steps: 5 });
    await page.mouse.up();
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a blue bird');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('img', { name: 'a blue bird' }).first().waitFor({ timeout: 60_000 });
    const history = await (await fetch(`${s.url}/history`)).json() as Record<string, { prompt: [number, string, Record<string, { class_type: string }>] }>;
    assert.ok(Object.values(history).some((h) => Object.values(h.prompt[2]).some((n) => n.class_type === 'SetLatentNoiseMask')), 'an inpaint graph ran');
    if (SHOTS) await page.screenshot({ path: join(shots, 'inpaint-1280.png') });

    // Workflow: load an API-format JSON, queue it, see the image on the SaveImage node
    const dir = await mkdtemp(join(tmpdir(), 'lk-wf-'));
    const wfFile = join(dir, 'workflow_api.json');
    await writeFile(wfFile, JSON.stringify(txt2img(7, { steps: 2, prefix: 'wf' })));
    await page.getByRole('tab', { name: 'Workflow' }).click();
    await page.getByLabel('Load workflow').setInputFiles(wfFile);
    await page.getByRole('status').filter({ hasText: 'loaded 7 nodes' }).waitFor();
    await page.getByRole('button', { name: 'Queue', exact: true }).click();
    await page.getByRole('img', { name: 'SaveImage output' }).waitFor({ timeout: 60_000 });
    if (SHOTS) await page.screenshot({ path: join(shots, 'workflow-1280.png') });

    // drop the PNG it made: its graph comes back (the UI-format workflow chunk written at queue time)
    const made = (await readdir(s.dirs.output)).find((f) => f.startsWith('wf'))!;
    const png = await readFile(join(s.dirs.output, made));
    await page.getByRole('tab', { name: 'Prompts' }).click();
    await page.evaluate(`(() => {
      const bytes = Uint8Array.from(atob('${png.toString('base64')}'), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    })()`);
    await page.getByRole('status').filter({ hasText: 'loaded 7 nodes' }).waitFor();
    assert.equal(await page.locator('.react-flow__node').count(), 7);

    // Prompts: save with a tag, find by word and by tag
    await page.getByRole('tab', { name: 'Prompts' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Winter fox');
    await page.getByLabel('Saved prompt', { exact: true }).fill('a fox in a snowy forest, golden hour');
    await page.getByLabel('Tags').fill('animals winter');
    await page.getByRole('button', { name: 'Save prompt' }).click();
    const search = page.getByRole('searchbox', { name: 'Search saved prompts' });
    await search.fill('snowy');
    await page.getByRole('list', { name: 'Saved prompts' }).getByText('Winter fox').waitFor();
    await search.fill('#winter');
    await page.getByRole('list', { name: 'Saved prompts' }).getByText('Winter fox').waitFor();
    await search.fill('nothing-like-this');
    await page.getByRole('list', { name: 'Saved prompts' }).getByText('Winter fox').waitFor({ state: 'detached' });
    if (SHOTS) {
      await search.fill('');
      await page.screenshot({ path: join(shots, 'prompts-1280.png') });
      await page.setViewportSize({ width: 390, height: 844 });
      for (const tab of ['Prompts', 'Gallery', 'Workflow', 'Generate']) {
        await page.getByRole('tab', { name: tab }).click();
        await page.waitForTimeout(300);
        await page.screenshot({ path: join(shots, `${tab.toLowerCase()}-390.png`) });
      }
    }
    assert.deepEqual(errors, []);
  } catch (err) {
    await browser?.pages()[0]?.screenshot({ path: join(tmpdir(), 'lk-web-failure.png') }).catch(() => undefined);
    throw err;
  } finally {
    await browser?.close();
    await s.close();
  }
});
