import { Component, inject, signal } from "@angular/core";
import { FormsModule } from "@angular/forms";
import { RouterLink } from "@angular/router";
import { IonButton, IonContent, IonHeader, IonInput, IonItem, IonList, IonText, IonTitle, IonToolbar, NavController } from "@ionic/angular/standalone";
import { ApiService } from "../api/api.service";
import { SecondFactorNeeded, describeError, errorCode } from "../api/errors";

@Component({
  selector: "app-login",
  imports: [FormsModule, RouterLink, IonHeader, IonToolbar, IonTitle, IonContent, IonList, IonItem, IonInput, IonButton, IonText],
  template: `
    <ion-header><ion-toolbar><ion-title>Baton</ion-title></ion-toolbar></ion-header>
    <ion-content class="ion-padding">
      <main class="narrow">
        <h1>Log in</h1>
        @if (api.notice(); as notice) {
          <ion-text color="medium"><p role="status">{{ notice }}</p></ion-text>
        }
        @if (step()) {
          <form (ngSubmit)="verify()">
            <p role="status">This account also asks for a one-time code.</p>
            <ion-list>
              <ion-item>
                <ion-input label="Code" labelPlacement="stacked" name="code" autocomplete="one-time-code" autocapitalize="off"
                  helperText="The 6 digits your authenticator app shows, or a recovery code" [(ngModel)]="code" />
              </ion-item>
            </ion-list>
            @if (error()) {
              <ion-text color="danger"><p role="alert">{{ error() }}</p></ion-text>
            }
            <ion-button type="submit" expand="block" [disabled]="busy()">Verify</ion-button>
            <ion-button type="button" fill="clear" expand="block" (click)="again()">Log in again</ion-button>
          </form>
        } @else {
          <form (ngSubmit)="submit()">
            <ion-list>
              <ion-item>
                <ion-input label="Username" labelPlacement="stacked" name="username" autocomplete="username" [(ngModel)]="username" />
              </ion-item>
              <ion-item>
                <ion-input label="Password" labelPlacement="stacked" type="password" name="password" autocomplete="current-password" [(ngModel)]="password" />
              </ion-item>
            </ion-list>
            @if (error()) {
              <ion-text color="danger"><p role="alert">{{ error() }}</p></ion-text>
            }
            <ion-button type="submit" expand="block" [disabled]="busy()">Log in</ion-button>
          </form>
        }
        <p>No account yet? <a routerLink="/signup">Sign up</a></p>
      </main>
    </ion-content>
  `,
})
export class LoginPage {
  protected readonly api = inject(ApiService);
  private readonly nav = inject(NavController);
  protected username = "";
  protected password = "";
  protected readonly error = signal<string | null>(null);
  protected readonly busy = signal(false);
  /** An account with one-time codes: the code step, after a right password (in memory only). */
  protected readonly step = signal<SecondFactorNeeded | null>(null);
  protected code = "";

  protected async submit(): Promise<void> {
    if (this.busy()) return;
    this.busy.set(true);
    this.error.set(null);
    try {
      await this.api.login({ username: this.username.trim(), password: this.password });
      this.password = "";
      await this.nav.navigateRoot("/inside");
    } catch (err) {
      if (err instanceof SecondFactorNeeded) {
        this.password = "";
        this.step.set(err);
      } else {
        this.error.set(describeError(err));
      }
    } finally {
      this.busy.set(false);
    }
  }

  protected async verify(): Promise<void> {
    const step = this.step();
    if (!step || this.busy()) return;
    this.busy.set(true);
    this.error.set(null);
    try {
      await this.api.loginWithCode(step, this.code.trim());
      this.step.set(null);
      await this.nav.navigateRoot("/inside");
    } catch (err) {
      // Expired, used up or from another client: the password again.
      if (errorCode(err) === "invalid_mfa_challenge") this.step.set(null);
      this.error.set(describeError(err));
    } finally {
      this.code = "";
      this.busy.set(false);
    }
  }

  protected again(): void {
    const step = this.step();
    if (step) this.api.abandonSecondStep(step);
    this.step.set(null);
    this.error.set(null);
    this.code = "";
  }
}
