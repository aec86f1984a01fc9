import { Component, inject, signal } from "@angular/core";
import { FormsModule } from "@angular/forms";
import { RouterLink } from "@angular/router";
import { IonButton, IonContent, IonHeader, IonInput, IonItem, IonList, IonText, IonTitle, IonToolbar, NavController } from "@ionic/angular/standalone";
import { ApiService } from "../api/api.service";
import { describeError } from "../api/errors";

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

  protected async submit(): Promise<void> {
    if (this.busy()) return;
    this.busy.set(true);
    this.error.set(null);
    try {
      await this.api.login({ username: this.username.trim(), password: this.password });
      this.password = "";
      await this.nav.navigateRoot("/inside");
    } catch (err) {
      this.error.set(describeError(err));
    } finally {
      this.busy.set(false);
    }
  }
}
