import { Component, computed, inject, type OnInit, signal } from "@angular/core";
import { IonButton, IonContent, IonHeader, IonText, IonTitle, IonToolbar } from "@ionic/angular/standalone";
import { ApiService } from "../api/api.service";
import { describeError } from "../api/errors";
import { NotLoggedIn } from "../auth/auth.interceptor";

@Component({
  selector: "app-inside",
  imports: [IonHeader, IonToolbar, IonTitle, IonContent, IonButton, IonText],
  template: `
    <ion-header><ion-toolbar><ion-title>Baton</ion-title></ion-toolbar></ion-header>
    <ion-content class="ion-padding">
      <main class="narrow">
        <h1>Inside</h1>
        <p>Logged in as <strong data-testid="username">{{ username() }}</strong></p>
        <ion-button expand="block" (click)="loadSecret()">Load secret</ion-button>
        @if (secret(); as secret) {
          <p data-testid="secret">{{ secret }}</p>
        }
        @if (error()) {
          <ion-text color="danger"><p role="alert">{{ error() }}</p></ion-text>
        }
        <ion-button expand="block" fill="outline" (click)="logout()">Log out</ion-button>
        @if (confirming()) {
          <p role="status">This logs you out on every device, this one included.</p>
          <ion-button expand="block" color="danger" (click)="logoutEverywhere()">End all sessions</ion-button>
          <ion-button expand="block" fill="clear" (click)="confirming.set(false)">Cancel</ion-button>
        } @else {
          <ion-button expand="block" fill="outline" color="danger" (click)="confirming.set(true)">Log out everywhere</ion-button>
        }
      </main>
    </ion-content>
  `,
})
export class InsidePage implements OnInit {
  private readonly api = inject(ApiService);
  /** Follows the stored session, also when another tab logs in as someone else. */
  protected readonly username = computed(() => this.api.session()?.username ?? "");
  protected readonly secret = signal<string | null>(null);
  protected readonly error = signal<string | null>(null);
  /** "Log out everywhere" asks first, as in Baton's web app. */
  protected readonly confirming = signal(false);

  /** The first call on entry: a session that ended meanwhile (expired, revoked) is found now. */
  async ngOnInit(): Promise<void> {
    await this.attempt(async () => void (await this.api.get("/api/users/me")));
  }

  protected loadSecret(): Promise<void> {
    return this.attempt(async () => this.secret.set((await this.api.get("/api/users/secret")).message));
  }

  protected logout(): Promise<void> {
    return this.api.logout();
  }

  protected logoutEverywhere(): Promise<void> {
    return this.attempt(() => this.api.logoutEverywhere());
  }

  private async attempt(call: () => Promise<void>): Promise<void> {
    this.error.set(null);
    try {
      await call();
    } catch (err) {
      // Sent to the login page already (the session ended): nothing to say here.
      if (!(err instanceof NotLoggedIn) && this.api.session()) this.error.set(describeError(err));
    }
  }
}
