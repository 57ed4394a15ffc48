"""Presidio's analyzer, set up for column scans: pattern recognizers, no language model, offline.

Presidio is the optional ``pii`` extra, imported only when a scan runs. The engine uses
Presidio's ``NoOpNlpEngine`` (no spaCy model is loaded or downloaded), so only recognizers that
need no NLP artefacts run: regular expressions with checksums (Luhn for cards, mod-97 for
IBANs, the national-id check digits) and ``phonenumbers`` for phones. Names and places need
a language model and are found here only through column-name hints.

Presidio's email recognizer validates the domain with ``tldextract``, whose default extractor
downloads the public suffix list on first use and caches it under ``~/.cache``. Ours uses an
extractor with no suffix-list URLs and no cache, i.e. the snapshot bundled in the wheel: no
network call, no file written, the same answer on every machine.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

__all__ = ["LANGUAGE", "RECOGNIZERS", "analyzer", "supported_entities"]

LANGUAGE = "en"

# Presidio recognizer classes run by a scan: the generic identifiers plus the national ids
# whose patterns carry a check digit or a distinctive shape. Left out on purpose: recognizers
# that need an NLP model (names, places), and weak patterns that match most numbers (US bank
# and driver-licence numbers, dates, postcodes, URLs).
RECOGNIZERS = (
    "EmailRecognizer", "PhoneRecognizer", "CreditCardRecognizer", "IbanRecognizer",
    "IpRecognizer", "MacAddressRecognizer",
    "UsSsnRecognizer", "UsItinRecognizer", "UsPassportRecognizer", "UkNinoRecognizer",
    "NhsRecognizer", "UkPassportRecognizer", "CaSinRecognizer", "EsNifRecognizer",
    "EsNieRecognizer", "ItFiscalCodeRecognizer", "PlPeselRecognizer",
    "FiPersonalIdentityCodeRecognizer", "SePersonnummerRecognizer", "DeTaxIdRecognizer",
    "InAadhaarRecognizer", "InPanRecognizer", "AuTfnRecognizer", "AuMedicareRecognizer",
    "SgFinRecognizer", "KrRrnRecognizer", "TrNationalIdRecognizer", "ZaIdNumberRecognizer",
    "NgNinRecognizer", "ThTninRecognizer",
)

INSTALL_HINT = "pip install 'modelworks[pii]'"


def _import() -> Any:
    try:
        import presidio_analyzer
    except ImportError as exc:
        raise InvalidInput(
            f"scanning for personal data needs Presidio: {INSTALL_HINT}", field="pii"
        ) from exc
    return presidio_analyzer


def _offline_email_recognizer() -> Any:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    # suffix_list_urls=() and cache_dir=None: the bundled public-suffix snapshot, no download.
    extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

    class OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    return OfflineEmailRecognizer(supported_language=LANGUAGE)


@lru_cache(maxsize=1)
def analyzer() -> AnalyzerEngine:
    """One engine per process: building it costs ~0.1 s, importing Presidio ~2 s."""
    presidio = _import()
    from presidio_analyzer import predefined_recognizers
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    recognizers = [_offline_email_recognizer()]
    for name in RECOGNIZERS[1:]:
        # Each country's recognizer defaults to its own language; a column holds values,
        # not prose, so they all run under one language code.
        recognizers.append(getattr(predefined_recognizers, name)(supported_language=LANGUAGE))
    registry = presidio.RecognizerRegistry(recognizers=recognizers,
                                           supported_languages=[LANGUAGE])
    nlp = NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "no_op"}])
    return presidio.AnalyzerEngine(registry=registry, nlp_engine=nlp,  # type: ignore[no-any-return]
                                   supported_languages=[LANGUAGE])


def supported_entities() -> list[str]:
    return sorted(analyzer().get_supported_entities(language=LANGUAGE))
