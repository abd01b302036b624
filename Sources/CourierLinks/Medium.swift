// The medium facts (LinkProperties, Airtime, LoRaParameters) live in CourierMedium, below the links and the engine;
// every user of the links sees them as before.
@_exported import CourierMedium
