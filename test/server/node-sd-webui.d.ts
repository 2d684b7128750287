// node-sd-webui 0.0.8 ships types that its package.json "exports" hide from NodeNext resolution; this
// declares the part of its surface the client test uses.
declare module 'node-sd-webui' {
  interface GenerationOptions {
    prompt: string; negativePrompt?: string; seed?: number; steps?: number; width?: number; height?: number;
    samplingMethod?: string; cfgScale?: number; imageData?: string[];
  }
  interface Client {
    txt2img(options: GenerationOptions): Promise<{ images: string[]; info: string }>;
    img2img(options: GenerationOptions & { imageData: string[] }): Promise<{ images: string[]; info: string }>;
    pngInfo(options: { imageData: string }): Promise<{ prompt: string; negativePrompt?: string; steps: number; samplingMethod: string; cfgScale: number; seed: number; width: number; height: number }>;
  }
  export default function sdwebui(props?: { apiUrl?: string }): Client;
}
