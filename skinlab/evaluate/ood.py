"""Should this prediction be trusted at all? Input-quality checks and out-of-distribution flags.

A classifier answers one of its nine classes for *any* picture, a cat included. Three
independent layers of doubt sit in front of its answer:

1. :func:`check_quality`: is the picture usable (large enough, not a strip, not blank,
   not badly blurred)? Measured on the decoded original-size image.
2. :func:`not_dermoscopy_reasons`: does it look like a close-up of skin at all (colour,
   saturation, darkness)? Cheap colour statistics, tuned on real ISIC images.
3. how unfamiliar does the *model* find it? With a fitted familiarity gate
   (:mod:`skinlab.evaluate.familiarity`, saved with runs since issue 15) its detector's score on the
   model's own features; for older runs without one, the free energy
   ``E = -T * logsumexp(logits / T)`` (Liu et al., 2020) of :func:`energy_score`, whose
   cut-off :func:`fit_ood_threshold` sets on the validation split. On real ISIC models the
   energy flagged 11 % of held-out lesions and passed a building; the gate is measured in
   the README's "Unfamiliar images" section.

:func:`assess` combines them into one :class:`OODResult`. These are heuristics for a
teaching tool: they catch obvious misuse, they do not certify an image.

Thresholds were measured on the 2,241 ISIC Train images (180x180) and the 464 synthetic
demo images: one ISIC image (an unusually saturated one) and no demo image trigger anything.

Example::

    threshold = fit_ood_threshold(val_logits, temperature)        # after training
    image = decode_image(upload)
    issues = check_quality(image)                                 # show "warn" ones too
    result = assess(image, logits, temperature=temperature, threshold=threshold)
    if result.ood:
        st.warning(result.reason)

Why one module: the input-quality checks and the energy score are what a prediction's trust
note is made of; they are read together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Shorter side below which an image is refused / warned about (ISIC exports are 180 px).
TINY_REJECT_PX, TINY_WARN_PX = 64, 96
#: Long side / short side above which an image is warned about / refused.
ASPECT_WARN, ASPECT_REJECT = 3.0, 6.0
#: Greyscale standard deviation (0..255) below which an image is blank (ISIC minimum: 6.2).
UNIFORM_STD = 4.0
#: Variance of the Laplacian below which an image is blurred (ISIC minimum: 12.3).
BLUR_LAPLACIAN_VAR = 10.0
#: Blur is measured at this shorter side, never upsampled (upsampling itself blurs).
BLUR_SIDE_PX = 256
#: Share of validation images that pass the energy threshold by default.
DEFAULT_QUANTILE = 0.95

# Plausibility limits, on a <= 128 px thumbnail in HSV (S, V in 0..1). ISIC extremes:
# mean saturation 0.047..0.689, dark share <= 0.17, vivid cool share <= 0.17, chroma
# spread <= 23.4 (the astronaut photo: 27).
_THUMB_PX = 128
_DARK_V = 0.2  # a pixel this dark is vignette or background, left out of colour statistics
_MIN_SATURATION = 0.04
_MAX_SATURATION = 0.66
_MAX_DARK_SHARE = 0.5
_VIVID_S = 0.4
_MAX_VIVID_COOL_SHARE = 0.25
_MAX_CHROMA_SPREAD = 25.0


@dataclass(frozen=True)
class QualityIssue:
    """One problem with an input image.

    Attributes:
        kind: ``"tiny"``, ``"aspect_ratio"``, ``"uniform"`` or ``"blur"``.
        message: one plain sentence for the user.
        severity: ``"reject"`` (no prediction on it can be trusted) or ``"warn"``.
    """

    kind: str
    message: str
    severity: str


@dataclass(frozen=True)
class OODResult:
    """The verdict of :func:`assess`.

    Attributes:
        ood: True when the prediction should not be trusted.
        score: the familiarity score when one was given, else the energy of the logits
            (higher = more unfamiliar, either way).
        threshold: the threshold ``score`` is compared with, or None when none was given.
        reason: one sentence saying why the image was flagged; None when it was not.
        layer: which layer flagged it: ``"quality"``, ``"colour"``, ``"familiarity"`` or
            ``"energy"``; None when none did.
    """

    ood: bool
    score: float
    threshold: float | None
    reason: str | None
    layer: str | None = None


def check_quality(image: Image.Image) -> list[QualityIssue]:
    """Problems with the decoded, original-size RGB ``image``, in the order checked.

    * ``tiny``: shorter side under ``TINY_REJECT_PX`` (reject) or ``TINY_WARN_PX`` (warn).
    * ``aspect_ratio``: long / short side over ``ASPECT_REJECT`` (reject) or
      ``ASPECT_WARN`` (warn).
    * ``uniform``: greyscale standard deviation under ``UNIFORM_STD`` (reject).
    * ``blur``: variance of the 4-neighbour Laplacian of a greyscale copy shrunk to
      ``BLUR_SIDE_PX`` on its shorter side (never enlarged) under ``BLUR_LAPLACIAN_VAR``
      (warn); not checked on a uniform image.

    Returns:
        The issues found; an empty list for a usable image.
    """
    issues = []
    short, long = sorted(image.size)
    if short < TINY_WARN_PX:
        severity = "reject" if short < TINY_REJECT_PX else "warn"
        issues.append(
            QualityIssue(
                "tiny",
                f"The image is only {short} pixels on its shorter side, too small to show a "
                f"lesion's detail; use one at least {TINY_WARN_PX} pixels across.",
                severity,
            )
        )
    if long > ASPECT_WARN * short:
        severity = "reject" if long > ASPECT_REJECT * short else "warn"
        issues.append(
            QualityIssue(
                "aspect_ratio",
                f"One side of the image is {long / short:.1f} times the other, which a close-up "
                "of a lesion never is; crop it around the lesion.",
                severity,
            )
        )
    grey = _grey_for_blur(image)
    if grey.std() < UNIFORM_STD:
        issues.append(
            QualityIssue(
                "uniform",
                "The image is almost a single flat colour, so there is nothing to classify.",
                "reject",
            )
        )
    elif min(grey.shape) >= 3 and _laplacian_variance(grey) < BLUR_LAPLACIAN_VAR:
        issues.append(
            QualityIssue(
                "blur",
                "The image is very blurred, so fine lesion structures are lost; retake it in focus.",
                "warn",
            )
        )
    return issues


def not_dermoscopy_reasons(image: Image.Image) -> list[str]:
    """Reasons the RGB ``image`` does not look like a close-up of skin; empty when plausible.

    Colour statistics of a thumbnail, over its pixels that are not near-black: almost no
    colour (greyscale photos, scans, text), most pixels near-black (night sky, black
    backgrounds), colours more saturated than skin, a large share of vivid blue, green or
    purple, or vivid and colourless areas side by side (busy everyday scenes). Each is one
    sentence. A skin-coloured photo of something else (a ginger cat) passes: that is what
    the energy score is for.
    """
    thumb = image.convert("RGB")
    thumb.thumbnail((_THUMB_PX, _THUMB_PX))
    hsv = np.asarray(thumb.convert("HSV"), dtype=np.float64) / 255.0
    hue, sat, val = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    lit = val > _DARK_V
    reasons = []
    if 1.0 - lit.mean() > _MAX_DARK_SHARE:
        reasons.append("Most of the image is black, unlike a close-up of skin.")
    if not lit.any():
        return reasons
    saturation = sat[lit].mean()
    if saturation < _MIN_SATURATION:
        reasons.append("The image has almost no colour, while skin photographs are in colour.")
    elif saturation > _MAX_SATURATION:
        reasons.append("The colours are far more vivid than skin ever is.")
    cool = (hue > 70.0) & (hue < 290.0) & (sat > _VIVID_S)
    if cool[lit].mean() > _MAX_VIVID_COOL_SHARE:
        reasons.append(
            "Much of the image is vivid blue, green or purple, colours skin does not have."
        )
    # Chroma is the distance from grey in the CbCr plane; its spread is large when vivid
    # and colourless areas mix (busy scenes) and small on skin, lesion included.
    ycbcr = np.asarray(thumb.convert("YCbCr"), dtype=np.float64)[lit]
    if np.hypot(ycbcr[:, 1] - 128.0, ycbcr[:, 2] - 128.0).std() > _MAX_CHROMA_SPREAD:
        reasons.append(
            "The image mixes many strongly different colours, unlike a close-up of skin."
        )
    return reasons


def energy_score(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The free energy ``-T * logsumexp(logits / T)`` over the last axis (higher = more unfamiliar).

    Args:
        logits: ``(C,)`` for one image or ``(N, C)``; finite.
        temperature: positive; use the run's calibration temperature.

    Returns:
        ``float64`` energies of shape ``logits.shape[:-1]`` (a 0-d array for one image).

    Raises:
        ValueError: non-finite logits, no classes, or a temperature that is not positive.
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"logits need a last axis of classes, got shape {z.shape}.")
    if not np.isfinite(z).all():
        raise ValueError("The logits contain NaN or infinite values; the model is broken.")
    top = z.max(axis=-1)
    return -(top + temperature * np.log(np.exp((z - top[..., None]) / temperature).sum(axis=-1)))


def fit_ood_threshold(
    val_logits: np.ndarray, temperature: float = 1.0, quantile: float = DEFAULT_QUANTILE
) -> float:
    """The energy threshold that at least ``quantile`` of the validation images pass.

    It is the smallest validation energy ``t`` with ``share(energy <= t) >= quantile``, so
    an image is flagged when its energy is *above* the threshold.

    Args:
        val_logits: ``(N, C)`` logits of the in-distribution validation images.
        temperature: as in :func:`energy_score`.
        quantile: in ``(0, 1]``.

    Raises:
        ValueError: no validation logits, or ``quantile`` outside ``(0, 1]``.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], not {quantile!r}.")
    energies = np.atleast_1d(energy_score(val_logits, temperature)).ravel()
    if energies.size == 0:
        raise ValueError("There are no validation images to fit the unfamiliarity threshold on.")
    return float(np.quantile(energies, quantile, method="inverted_cdf"))


def assess(
    image: Image.Image,
    logits: np.ndarray,
    *,
    temperature: float = 1.0,
    threshold: float | None = None,
    familiarity: float | None = None,
) -> OODResult:
    """Whether a prediction on ``image`` should be flagged, and why.

    Checked in order, the first hit giving the reason: a ``"reject"`` quality issue
    (:func:`check_quality`), a plausibility reason (:func:`not_dermoscopy_reasons`), then the
    model's own doubt: the ``familiarity`` score when given, else the energy of ``logits``,
    above ``threshold`` (skipped when ``threshold`` is None). Quality warnings do not flag
    an image; show them from :func:`check_quality`.

    Args:
        image: the decoded original-size RGB image.
        logits: the model's ``(C,)`` or ``(1, C)`` logits for it.
        temperature: the run's calibration temperature.
        threshold: the gate's threshold with ``familiarity``; else from
            :func:`fit_ood_threshold` with ``DEFAULT_QUANTILE``, as the message says.
        familiarity: the score of :meth:`skinlab.evaluate.familiarity.FamiliarityGate.scores`.

    Raises:
        ValueError: ``logits`` are not one image's, or as :func:`energy_score`.
    """
    energy = energy_score(logits, temperature)
    if energy.size != 1:
        raise ValueError(f"assess takes the logits of one image, got shape {np.shape(logits)}.")
    score = float(energy.ravel()[0]) if familiarity is None else float(familiarity)
    reject = [issue.message for issue in check_quality(image) if issue.severity == "reject"]
    layer, reasons = ("quality", reject) if reject else ("colour", not_dermoscopy_reasons(image))
    if not reasons and threshold is not None and score > threshold:
        layer, reasons = (
            "energy",
            [
                f"The model finds this image unfamiliar (energy {score:.2f} above the threshold "
                f"{threshold:.2f} fitted so {DEFAULT_QUANTILE:.0%} of validation images pass)."
            ],
        )
        if familiarity is not None:
            layer, reasons = "familiarity", [familiarity_reason(score, threshold)]
    return OODResult(
        bool(reasons), score, threshold, reasons[0] if reasons else None, layer if reasons else None
    )


def familiarity_reason(score: float, threshold: float) -> str:
    """The sentence for an image the familiarity gate flags at ``threshold``."""
    return (
        "In the model's own features this image looks unlike dermoscopy of its training "
        f"lesions (unfamiliarity {score:.2f}, above the threshold {threshold:.2f} that most "
        "validation lesions pass)."
    )


def _grey_for_blur(image: Image.Image) -> np.ndarray:
    """Greyscale ``float64`` copy, shrunk (never enlarged) to ``BLUR_SIDE_PX`` on its shorter side."""
    grey = image.convert("L")
    scale = BLUR_SIDE_PX / min(grey.size)
    if scale < 1.0:
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.float64)


def _laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels: low when blurred."""
    centre = grey[1:-1, 1:-1]
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * centre
    return float(lap.var())
