// Camera health for the wall: the list of cameras with their health, kept current.

import { api } from "./api.js";

const HEALTH_POLL_MS = 2000;

export class HealthFeed {
  // onCameras(list) gets the whole list of CameraOut at each update; onError(error) a failure.
  constructor({ onCameras, onError }) {
    this.onCameras = onCameras;
    this.onError = onError;
  }

  async load() {
    return api.get("/api/cameras");
  }

  start() {
    const poll = async () => {
      try {
        this.onCameras(await this.load());
      } catch (error) {
        this.onError(error);
      }
      setTimeout(poll, HEALTH_POLL_MS);
    };
    setTimeout(poll, HEALTH_POLL_MS);
  }
}
