"""Canadian province codes used in file names."""

PROVINCES: dict[str, str] = {
    "AB": "Alberta",
    "BC": "British Columbia",
    "MB": "Manitoba",
    "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador",
    "NS": "Nova Scotia",
    "ON": "Ontario",
    "PE": "Prince Edward Island",
    "QC": "Quebec",
    "SK": "Saskatchewan",
}

#: (west, south, east, north) of the ten provinces in WGS84 degrees, with 0.1 degree to spare:
#: a point outside cannot be a Canadian field (Paris, the South Pole, swapped lon/lat).
CANADA_BOUNDS: tuple[float, float, float, float] = (-139.2, 41.6, -52.5, 62.7)
