import { provideHttpClient, withInterceptors } from "@angular/common/http";
import { provideZoneChangeDetection } from "@angular/core";
import { bootstrapApplication } from "@angular/platform-browser";
import { PreloadAllModules, provideRouter, withPreloading } from "@angular/router";
import { IonicRouteStrategy, provideIonicAngular } from "@ionic/angular/standalone";
import { RouteReuseStrategy } from "@angular/router";
import { AppComponent } from "./app/app.component";
import { routes } from "./app/app.routes";
import { authInterceptor } from "./app/auth/auth.interceptor";
import { API_URL, loadApiUrl } from "./app/config";

loadApiUrl().then((apiUrl) =>
  bootstrapApplication(AppComponent, {
    providers: [
      provideZoneChangeDetection({ eventCoalescing: true }),
      { provide: API_URL, useValue: apiUrl },
      { provide: RouteReuseStrategy, useClass: IonicRouteStrategy },
      provideIonicAngular(),
      provideRouter(routes, withPreloading(PreloadAllModules)),
      provideHttpClient(withInterceptors([authInterceptor])),
    ],
  }),
).catch((err) => console.error(err));
