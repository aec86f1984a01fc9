import { Component, inject, signal } from "@angular/core";
import { FormsModule } from "@angular/forms";
import { RouterLink } from "@angular/router";
import { IonButton, IonContent, IonHeader, IonInput, IonItem, IonList, IonText, IonTitle, IonToolbar, NavController } from "@ionic/angular/standalone";
import { ApiService } from "../api/api.service";
import { describeError } from "../api/errors";

@Component({
  selector: "app-signup",
  imports: [FormsModule, RouterLink, IonHeader, IonToolbar, IonTitle, IonContent, IonList, IonItem, IonInput, IonButton, IonText],
  template: `
    <ion-header><ion-toolbar><ion-title>Baton</ion-title></ion-toolbar></ion-header>
    <ion-content class="ion-padding">
      <main class="narrow">
        <h1>Sign up</h1>
        <form (ngSubmit)="submit()">
          <ion-list>
            <ion-item>
              <ion-input label="Username" labelPlacement="stacked" name="username" autocomplete="username" [(ngModel)]="username"
                helperText="3 to 32 letters, digits, _ . or -" />
            </ion-item>
            <ion-item>
              <ion-input label="Password" labelPlacement="stacked" type="password" name="password" autocomplete="new-password" [(ngModel)]="password"
                helperText="At least 8 characters, not a common password" />
            </ion-item>
            <ion-item>
              <ion-input label="Email" labelPlacement="stacked" type="email" name="email" autocomplete="email" [(ngModel)]="email"
                helperText="Optional: without one, a forgotten password cannot be reset" />
            </ion-item>
          </ion-list>
          @if (error()) {
            <ion-text color="danger"><p role="alert">{{ error() }}</p></ion-text>
          }
          <ion-button type="submit" expand="block" [disabled]="busy()">Create account</ion-button>
        </form>
        <p>Have an account? <a routerLink="/login">Go to the login page</a></p>
      </main>
    </ion-content>
  `,
})
export class SignupPage {
  private readonly api = inject(ApiService);
  private readonly nav = inject(NavController);
  protected username = "";
  protected password = "";
  protected email = "";
  protected readonly error = signal<string | null>(null);
  protected readonly busy = signal(false);

  protected async submit(): Promise<void> {
    if (this.busy()) return;
    this.busy.set(true);
    this.error.set(null);
    try {
      const email = this.email.trim();
      await this.api.signup({ username: this.username.trim(), password: this.password, ...(email ? { email } : {}) });
      this.password = "";
      await this.nav.navigateRoot("/inside");
    } catch (err) {
      this.error.set(describeError(err));
    } finally {
      this.busy.set(false);
    }
  }
}
