"""Coarse outline of the area where Chinese map providers apply GCJ-02: data only.

One ring of 150 (lon, lat) vertices in degrees, clockwise from the Amur. It covers
mainland China, Hainan, Hong Kong and Macau. Taiwan and Penghu are left out.
I drew it by hand along the land borders, checked it against Natural Earth
1:110m Admin-0 (public domain) and corrected it where the two differed by more
than about 0.3°. Known limits:

* Along land borders it is accurate to about 0.1–0.3° (10–30 km). A twin town
  on a border river, such as Heihe/Blagoveshchensk, Hekou/Lao Cai or
  Ruili/Muse, may land on the wrong side.
* On the coast the ring runs 20–50 km offshore, so it keeps the coastal islands
  (Zhoushan, Pingtan, Weizhou) and coastal waters. Kinmen and Matsu lie a few km
  off Fujian and so fall inside.
* The South China Sea islands beyond Hainan are outside.
* Where a border is disputed, the ring follows the line that is actually
  administered.

``gis.crs.in_china`` tests points against this ring. Where the answer matters,
callers should say so with ``china_only=...``.
"""

from __future__ import annotations

__all__ = ["CHINA_OUTLINE"]

CHINA_OUTLINE: tuple[tuple[float, float], ...] = (
    # Amur (Heilongjiang), upstream to downstream; the east tip stops west of Khabarovsk
    (123.27, 53.56), (125.95, 52.79), (126.72, 51.72), (127.55, 50.22), (127.70, 49.76),
    (129.40, 49.44), (130.40, 48.90), (130.95, 47.75), (132.51, 47.75), (134.30, 48.40),
    (134.75, 48.40),
    # Ussuri, Lake Khanka, Primorye
    (133.70, 45.98), (133.10, 45.18), (131.90, 45.30), (131.05, 44.95), (131.30, 44.05),
    (131.15, 42.95), (130.60, 42.42),
    # Tumen
    (129.97, 42.98), (129.75, 42.43), (128.08, 42.00),
    # Yalu
    (128.26, 41.38), (126.87, 41.80), (126.20, 41.11),
    # coast, pushed offshore; west of Korea's islands, east of Zhoushan, west of Penghu
    (123.30, 39.40), (122.90, 36.80), (121.20, 36.30), (119.90, 35.00), (120.80, 34.40),
    (121.30, 33.10), (122.20, 32.10), (122.30, 31.40), (123.00, 30.80), (122.90, 29.80),
    (122.20, 28.30), (120.15, 25.90), (119.40, 24.60), (116.90, 22.85), (115.50, 22.45),
    (114.50, 21.85), (111.80, 21.30), (110.90, 20.80),
    # Hainan, joined to the mainland across the Qiongzhou strait
    (111.25, 19.80), (110.30, 18.20), (109.50, 17.90), (108.35, 18.60), (108.35, 19.20),
    (108.85, 19.90), (108.90, 20.90),
    # Vietnam
    (107.95, 21.55), (107.04, 21.81), (106.57, 22.25), (106.75, 22.85), (105.32, 23.38),
    (103.97, 22.50), (102.71, 22.71),
    # Laos
    (101.65, 22.32), (101.78, 21.15), (101.15, 21.85),
    # Myanmar
    (100.42, 21.56), (99.24, 22.12), (99.50, 22.90), (98.90, 23.14), (98.66, 24.06),
    (97.85, 23.98), (97.72, 25.10), (98.67, 25.92), (98.68, 27.51), (97.90, 28.30),
    # India (east)
    (96.25, 28.41), (96.12, 29.45), (95.40, 29.03), (94.57, 29.28), (92.50, 27.90),
    (91.70, 27.77),
    # Bhutan, Chumbi valley (Yadong), Sikkim
    (90.02, 28.30), (89.00, 27.25), (88.80, 27.40), (88.73, 28.09), (88.12, 27.88),
    # Nepal
    (86.10, 28.15), (85.98, 27.95), (85.70, 28.35), (84.23, 28.84), (82.33, 30.12),
    (81.25, 30.10),
    # India (west), Aksai Chin
    (79.72, 30.90), (78.75, 31.82), (78.50, 32.55), (79.45, 32.70), (78.80, 33.50),
    (78.60, 34.40), (77.82, 35.50),
    # Pakistan, Afghanistan, Tajikistan
    (76.50, 35.90), (75.42, 36.85), (74.86, 38.38), (73.93, 38.51),
    # Kyrgyzstan
    (73.82, 39.89), (75.47, 40.56), (76.53, 40.43), (76.90, 41.07), (78.19, 41.19),
    (78.54, 41.58), (80.12, 42.12),
    # Kazakhstan, Russia (Altai)
    (80.18, 42.92), (80.85, 43.18), (80.00, 44.90), (82.46, 45.54), (83.15, 47.25),
    (85.16, 47.00), (85.72, 47.45), (85.77, 48.46), (86.60, 48.55), (87.36, 49.21),
    # Mongolia
    (88.85, 48.07), (90.28, 47.69), (90.97, 46.89), (90.59, 45.72), (90.95, 45.29),
    (93.48, 44.98), (95.31, 44.24), (96.35, 42.73), (99.52, 42.52), (101.83, 42.51),
    (103.31, 41.91), (104.96, 41.60), (106.13, 42.13), (107.74, 42.48), (109.24, 42.52),
    (110.41, 42.87), (111.90, 43.70), (111.35, 44.46), (111.87, 45.10), (113.46, 44.81),
    (114.46, 45.34), (115.99, 45.73), (117.42, 46.67), (119.66, 46.69), (119.77, 47.05),
    (118.06, 48.07), (117.30, 47.70), (115.74, 47.73), (115.49, 48.14), (116.68, 49.89),
    # Argun
    (117.88, 49.51), (119.29, 50.14), (119.28, 50.58), (120.74, 51.96), (120.25, 52.72),
    (121.00, 53.25),
)  # fmt: skip
