"""The weather from Open-Meteo (no key): now, and today's rain chance, high and low.

A place named in the question is looked up with Open-Meteo's geocoding API; otherwise the
configured one (tools.weather.latitude/longitude, or location by name)."""

from __future__ import annotations

from typing import Any

from ..errors import ToolError
from . import _http
from .base import Tool, ToolContext, ToolResult

SERVICE = "Open-Meteo"
# WMO weather interpretation codes (Open-Meteo's docs), in words a voice says
_CODES = {
    0: "clear sky", 1: "mainly clear", 2: "partly cloudy", 3: "overcast", 45: "fog",
    48: "freezing fog", 51: "light drizzle", 53: "drizzle", 55: "heavy drizzle",
    56: "freezing drizzle", 57: "freezing drizzle", 61: "light rain", 63: "rain",
    65: "heavy rain", 66: "freezing rain", 67: "freezing rain", 71: "light snow", 73: "snow",
    75: "heavy snow", 77: "snow grains", 80: "rain showers", 81: "rain showers",
    82: "violent rain showers", 85: "snow showers", 86: "heavy snow showers",
    95: "a thunderstorm", 96: "a thunderstorm with hail", 99: "a thunderstorm with hail",
}  # fmt: skip
UMBRELLA_FROM_PERCENT = 40  # a rain chance from here on: take an umbrella


class WeatherTool(Tool):
    name = "get_weather"
    description = (
        "Current weather and today's forecast (rain chance, high, low) for the user's place or a"
        " named city; answers 'should I bring an umbrella?'."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "a city; empty: home"}},
    }

    def __init__(self, context: ToolContext):
        self.settings = context.config.weather

    def setup_problem(self) -> str | None:
        s = self.settings
        if s.location or (s.latitude is not None and s.longitude is not None):
            return None
        return "not set up: set tools.weather.location (or latitude and longitude)"

    async def _place(self, name: str | None) -> tuple[float, float, str]:
        s = self.settings
        if not name and s.latitude is not None and s.longitude is not None:
            return s.latitude, s.longitude, s.location or "your place"
        name = name or s.location
        if not name:
            raise ToolError(
                "no place for the weather: set tools.weather.location (or latitude and longitude)"
            )
        resp = await _http.request(
            SERVICE,
            "GET",
            s.geocoding_url.rstrip("/") + "/search",
            params={"name": name, "count": 1, "format": "json"},
        )
        if resp.status != 200:
            raise ToolError(f"{SERVICE} could not look up {name!r} ({resp.status})")
        found = (resp.json(SERVICE) or {}).get("results") or []
        if not found:
            raise ToolError(f"{SERVICE} does not know a place called {name!r}")
        top = found[0]
        return float(top["latitude"]), float(top["longitude"]), str(top.get("name", name))

    async def run(self, args: dict[str, Any]) -> ToolResult:
        latitude, longitude, place = await self._place((args.get("location") or "").strip())
        imperial = self.settings.units == "imperial"
        params: dict[str, Any] = {
            "latitude": latitude,
            "longitude": longitude,
            "current": "temperature_2m,weather_code,wind_speed_10m,precipitation",
            "daily": "temperature_2m_max,temperature_2m_min,precipitation_probability_max",
            "timezone": "auto",
            "forecast_days": 1,
        }
        if imperial:
            params.update(temperature_unit="fahrenheit", wind_speed_unit="mph")
        resp = await _http.request(
            SERVICE, "GET", self.settings.base_url.rstrip("/") + "/forecast", params=params
        )
        if resp.status != 200:
            raise ToolError(f"{SERVICE} could not give the weather ({resp.status})")
        data = resp.json(SERVICE)
        try:
            current, daily = data["current"], data["daily"]
            temp = round(current["temperature_2m"])
            sky = _CODES.get(int(current["weather_code"]), "unsettled weather")
            high = round(daily["temperature_2m_max"][0])
            low = round(daily["temperature_2m_min"][0])
            rain = daily.get("precipitation_probability_max", [None])[0]
        except (KeyError, IndexError, TypeError, ValueError):
            raise ToolError(f"{SERVICE} answered without the expected forecast") from None
        unit = "°F" if imperial else "°C"
        text = f"In {place} it is {temp}{unit} with {sky}; today {low} to {high}{unit}"
        if rain is not None:
            text += f", {rain}% chance of rain"
            text += (
                " (take an umbrella)."
                if rain >= UMBRELLA_FROM_PERCENT
                else " (no umbrella needed)."
            )
        else:
            text += "."
        return ToolResult(
            text,
            {
                "place": place,
                "temperature": temp,
                "sky": sky,
                "high": high,
                "low": low,
                "rain_chance_percent": rain,
                "unit": unit,
            },
        )


def tools(context: ToolContext) -> list[Tool]:
    return [WeatherTool(context)]
