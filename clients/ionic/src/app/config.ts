import { InjectionToken } from "@angular/core";

/** Baton's base URL, from `config.json` beside `index.html`: one build serves any deployment. */
export const API_URL = new InjectionToken<string>("API_URL");

export async function loadApiUrl(): Promise<string> {
  const res = await fetch("config.json", { cache: "no-cache" });
  const { apiUrl } = (await res.json()) as { apiUrl: string };
  return apiUrl.replace(/\/+$/, "");
}
