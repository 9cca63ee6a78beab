"""Quick-look matplotlib figures: what the ``.plot()`` methods of models and results draw.

* :mod:`campfire.quicklook.spectrum` — ``SpectrumData.plot()`` / ``Spectrum.plot()``
  (:func:`plot_spectrum_data`), emission-line markers and axis labels;
* :mod:`campfire.quicklook.calibration` — ``CalibrationResult.plot()``
  (:func:`plot_calibration`) and ``calibrate_and_stack(...).plot()``
  (:func:`plot_calibrate_and_stack`).

"""
from campfire.quicklook.calibration import plot_calibrate_and_stack, plot_calibration
from campfire.quicklook.spectrum import (
    REST_WAVE_LABEL,
    WAVE_LABEL,
    flux_label,
    is_rest_frame,
    label_indices,
    mark_emission_lines,
    plot_spectrum_data,
    pretty_line_name,
    trusted_flux,
    wavelength_label,
)

__all__ = [
    "plot_spectrum_data",
    "plot_calibration",
    "plot_calibrate_and_stack",
    "mark_emission_lines",
    "flux_label",
    "wavelength_label",
    "is_rest_frame",
    "pretty_line_name",
    "label_indices",
    "trusted_flux",
    "WAVE_LABEL",
    "REST_WAVE_LABEL",
]
